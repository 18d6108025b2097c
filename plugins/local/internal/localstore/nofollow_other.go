//go:build !unix

package localstore

// noFollow is 0 where there is no O_NOFOLLOW; see nofollow_unix.go.
const noFollow = 0
