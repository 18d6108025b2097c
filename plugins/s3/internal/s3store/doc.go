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
package s3store
