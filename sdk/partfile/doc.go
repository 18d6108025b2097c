// Package partfile is for storage plugins that implement sdk.PartStorage on a file system
// (a local disk, an SMB share, anything with files that can be written at offsets and
// renamed): it holds the formats and the bookkeeping, and the plugin does the I/O.
//
// An unfinished object of key "dir/name" is two hidden files beside its target:
//
//	dir/.name.<id>.partial   the object's bytes; part n is written at offset n × part size
//	dir/.name.<id>.journal   which parts are complete, one fixed-size record per part
//
// <id> is 16 random hexadecimal digits chosen by New. Commit renames the .partial file onto
// the target (the object appears atomically and is never read back) and then removes the
// journal. Names of long keys are shortened (see Prefix), and ParseName recognises both files
// of every unfinished object of a key, so that BeginObject and AbortObject(key, nil) can find
// the leftovers of a crash before the host recorded a handle.
//
// # The handle
//
// A Handle is self-describing, so it stays valid when the plugin restarts. Marshal encodes
// it (integers big-endian):
//
//	version 1 (1 byte) | id (8) | size (8) | part size (8) | part count (4) |
//	key length (2) | key | CRC-32C of all the bytes before (4)
//
// Parse refuses, with an error wrapping sdk.ErrNotFound, anything else: another version, a
// bad checksum, a key that sdk.ValidKey refuses, an inconsistent size. A handle never names
// a path: the plugin derives both file names from the key and the id, beside the key's
// target, so no handle can reach outside the plugin's root. The journal's header repeats
// the handle's fields and CheckJournal compares them, so a handle edited to another size
// does not match its files.
//
// # The journal
//
// The journal is a sequence of 64-byte records: the header at offset 0, and the record of
// part n at offset 64 × (n+1), overwritten in place (never appended, so concurrent writers
// of different parts never race for an offset, also over SMB, whose appends are not atomic).
// A slot that was never written reads as zeros, which is no record. Every record ends with
// the CRC-32C of its first 60 bytes, so a torn write reads as no record too:
//
//	header: "CUPJ" | version 1 | 'H' | 0 0 | id (8) | size (8) | part size (8) |
//	        part count (4) | first 24 bytes of SHA-256(key) | CRC-32C (4)
//	part:   "CUPJ" | version 1 | state | 0 0 | part number (4) | size (8) |
//	        write id (8) | SHA-256 of the part (32) | CRC-32C (4)
//
// state is 'V' (the part's bytes are written and durable) or 'X' (they are being replaced).
//
// # Writing a part
//
// StartPart checks the journal's header and, if the part's slot holds a 'V' record, replaces
// it with an 'X' record and syncs the journal: from then on no receipt of the part is valid,
// so its bytes may change. (A part written for the first time has no record and skips this
// sync.) The plugin then writes the bytes at Part.Offset through Part.Copy, which checks the
// size and the SHA-256, makes them durable (fdatasync, an SMB flush), and calls Part.Finish,
// which writes a 'V' record with a fresh random write id, syncs the journal and returns the
// receipt:
//
//	version 1 (1 byte) | part number (4) | size (8) | write id (8) | SHA-256 (32)
//
// Any failure in between leaves the slot without a valid record, so the part is absent. A
// part written again gets another write id, and the earlier receipt no longer matches.
//
// # Committing
//
// Verify reads the journal (in bounded batches) and requires one receipt per part, each
// equal to the part's 'V' record; anything else is sdk.ErrStaleReceipt. Only then does the
// plugin sync the .partial file, rename it onto the target, sync the directory and remove
// the journal. A plugin finds out whether an interrupted commit already renamed the object
// from which files are left: a journal without its .partial file is left only by a commit
// (AbortObject removes the journal first), and neither file with the target in place
// means the handle was committed.
//
// # Concurrency
//
// Locks serialises, inside one plugin process, writes of the same part, and lets a commit
// or an abort wait for (and an abort cancel) the parts in flight. The plugin process is
// the only writer of its files; after a restart the earlier process is gone.
package partfile
