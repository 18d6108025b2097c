#!/usr/bin/env bash
# Prints the -X linker flags that stamp the tree's commit into sdk/buildinfo (make build passes
# them with -ldflags), or nothing outside a git work tree.
#
# go build stamps vcs.revision, vcs.time and vcs.modified itself (-buildvcs) in a plain clone,
# but not in a linked worktree (`git worktree add`: .git is a file there, which the go command
# does not recognise) and not when GOFLAGS carries -buildvcs=false. buildinfo.Read prefers
# these flags when present, so every `make build` says what it was built from.
set -euo pipefail

cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."
git rev-parse --is-inside-work-tree >/dev/null 2>&1 || exit 0
rev=$(git rev-parse HEAD 2>/dev/null) || exit 0
# The commit time in UTC, RFC 3339, as go build writes vcs.time.
time=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ HEAD)
# Modified as go build counts it: any change, untracked files included (ignored ones not).
modified=false
if [[ -n $(git status --porcelain 2>/dev/null) ]]; then modified=true; fi
pkg=github.com/chunked-uploader/chunked-uploader/sdk/buildinfo
printf -- '-X %s.vcsRevision=%s -X %s.vcsTime=%s -X %s.vcsModified=%s\n' "$pkg" "$rev" "$pkg" "$time" "$pkg" "$modified"
