//go:build !unix

package pluginmgr

import "os"

// ownedByMe is always false where file owners are not Unix users: nothing is swept.
func ownedByMe(os.FileInfo) bool { return false }

// processGone is always false here: nothing is swept.
func processGone(int) bool { return false }
