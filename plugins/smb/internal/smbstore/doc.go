// Package smbstore stores objects as files on an SMB2/3 share (Windows, Samba, NAS devices),
// speaking the protocol itself through github.com/hirochachacha/go-smb2 (NTLMv2 login; no
// mount on the host, no cgo).
//
// Settings (through Configure):
//
//	SMB_HOST     server name or address (default localhost)
//	SMB_PORT     TCP port (default 445)
//	SMB_USER     user name (required; guest access is not supported)
//	SMB_PASS     password
//	SMB_DOMAIN   NTLM domain (optional)
//	SMB_SHARE    share name (default "share")
//	SMB_PATH     directory inside the share that holds the objects (optional; created on demand)
//
// A Store keeps one SMB session (TCP connection, login, mounted share) that all operations
// share, and replaces it when the connection drops: an operation that fails on a broken
// connection is retried once on a new one (a Put only before it has consumed its reader).
// go-smb2 waits for answers without limit, so a session whose request goes unanswered for
// two minutes is dropped too.
//
// Put writes 1 MiB requests with up to four in flight (about 4 MiB of buffers per Put).
//
// Put writes into a temporary file beside the target (".<name>.<random>.tmp"), and renames it
// into place only after the reader ended with exactly the declared size. go-smb2 cannot
// rename over an existing file, so replacing one takes three steps: the old file is renamed
// aside, the new one into place, and the old one removed. Readers never see a partial file,
// but for the duration of one rename the key is absent; if the second rename fails the old
// file is put back.
//
// The Store also stores objects part by part (sdk.PartStorage, parts.go), in the layout of
// package sdk/partfile: a hidden ".<name>.<id>.partial" file beside the target, written at
// each part's offset and flushed before the part's receipt (Samba writes a flushed file to
// disk when "strict sync" is on, its default), and a small journal ".<name>.<id>.journal"
// of the parts that are complete. Commit flushes the file and renames it onto the target
// with the same three steps as Put. Any size of part is taken, up to partfile.MaxParts
// parts.
package smbstore
