// Package s3store stores objects in a bucket of Amazon S3 or an S3-compatible server
// (MinIO, versitygw, Ceph RGW, Cloudflare R2, ...).
//
// Settings (through Configure):
//
//	S3_ENDPOINT           endpoint URL, e.g. http://127.0.0.1:9000; empty = AWS
//	S3_BUCKET             bucket name (default "uploads"); it must exist
//	S3_REGION             region (default us-east-1)
//	S3_FORCE_PATH_STYLE   path-style addressing (default true when S3_ENDPOINT is set)
//	S3_PART_SIZE_MB       multipart part size in MiB, 5..5120 (default 16)
//	S3_CONCURRENCY        parts uploaded at once, 1..64 (default 4)
//	AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
//	                      static credentials; without them the SDK's standard chain is used
//	                      (environment, shared config with AWS_PROFILE, container/instance roles)
//
// Put sends objects of up to one part with a single PutObject carrying the object's SHA-256
// (which the server verifies), and larger ones as a multipart upload: the stream is cut into
// parts that up to S3_CONCURRENCY workers upload while the next part is read, so a Put holds
// at most S3_PART_SIZE_MB x S3_CONCURRENCY bytes in memory. The part size grows by itself when
// an object would need more than 10,000 parts (S3's limit). The upload is completed only after
// the reader reported the end of a stream of exactly the declared size; on any error it is
// aborted, so neither an object nor orphaned parts remain.
//
// # Part-wise storage
//
// The Store also implements sdk.PartStorage, so the host sends each part of an upload as
// soon as it is staged and completing the upload only commits what S3 holds. A part-wise
// object is one multipart upload and host part n is S3 part n+1, so the host's part size is
// the S3 part size (S3_PART_SIZE_MB applies to Put only). S3's limits apply: parts but the
// last of at least 5 MiB and at most 5 GiB, at most 10,000 parts, 5 TiB; the sdk declines
// other objects and the host stores them with Put.
//
//   - BeginObject aborts the unfinished multipart uploads of exactly that key, then creates
//     one with the SHA-256 checksum algorithm. Its handle (version 1, at most about 300
//     bytes plus bucket and key) encodes bucket, key, upload id, the object's shape and a
//     random nonce that is also stored as x-amz-meta-chunked-uploader-id; a handle naming
//     another bucket, an invalid key or an inconsistent shape is refused as unknown
//     (sdk.ErrNotFound).
//   - PutPart streams the host's reader into one UploadPart: the part is never held in
//     memory (per part in flight, a 32 KiB copy buffer and the reader's 1 MiB chunk, plus
//     what gRPC buffers of the stream, up to the sdk's 8 MiB window). The
//     server verifies the bytes against the part's SHA-256 twice: as the SigV4 payload
//     hash (x-amz-content-sha256) and as x-amz-checksum-sha256. The last byte is held back
//     until the reader confirmed the part. When a PutPart fails, S3 keeps the part's
//     earlier copy, so the plugin replaces it with an empty part, which makes earlier
//     receipts of it stale (if even that fails, the earlier receipt still commits exactly
//     the earlier bytes, whose SHA-256 and ETag it names). Resending the same bytes gives
//     the same ETag: the earlier receipt stays valid and names the same bytes.
//   - CommitObject is one CompleteMultipartUpload naming every part's ETag and SHA-256
//     (InvalidPart, a stale receipt, becomes sdk.ErrStaleReceipt), followed by a HeadObject
//     that checks the object is this handle's (nonce and size): that makes a retried
//     commit idempotent and does not trust servers that report success for a vanished
//     upload (versitygw v1.8.0 does when any object exists under the key).
//   - AbortObject is AbortMultipartUpload; without a handle it aborts every unfinished
//     upload of the key.
//
// The whole object's SHA-256 is recorded as x-amz-meta-sha256 (which Stat reports) only
// when the client declared it at init: S3 takes metadata only at CreateMultipartUpload,
// and adding it later would mean copying the object onto itself. CommitObject refuses a
// digest other than the declared one. Without a declared digest the object records none,
// as Put's multipart objects; its parts' SHA-256 checksums (a composite checksum of the
// object, "<sha256 of the part digests>-<parts>") are still kept by servers that support
// them.
//
// Servers differ in what CompleteMultipartUpload costs: versitygw (v1.8.0) copies the parts
// into the object file, so there a commit takes time in proportion to the object's size
// (about 3 s per GiB measured on loopback), with or without this plugin.
package s3store
