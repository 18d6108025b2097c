// Package sdk is what storage plugin authors import.
//
// A storage plugin is a separate executable named chunked-uploader-plugin-<name>. The host
// (chunked-uploader) starts it when STORAGE_BACKEND=<name> and talks to it over gRPC through
// hashicorp/go-plugin. A plugin implements Storage and calls Serve from main:
//
//	func main() {
//		sdk.Serve("memo", func(ctx context.Context, cfg sdk.Config, log hclog.Logger) (sdk.Storage, error) {
//			return memo.New(cfg.Get("MEMO_ROOT"))
//		})
//	}
//
// Settings reach the plugin through the Configure call, never through its environment: the
// host passes every variable whose name starts with the upper-cased backend name and an
// underscore (MEMO_ROOT for backend "memo"), from its environment or its .env file. The
// host's own secrets (API_KEY, JWT_SECRET, WEBHOOK_SECRET) are never passed.
//
// The host streams every delivered file into Put at complete, unless the Storage also
// implements the optional PartStorage: then it sends each part to PutPart as soon as a
// client uploaded it, persists the handles and receipts, and completing the upload is one
// CommitObject. Package partfile holds the formats for backends built on files.
//
// Errors cross to the host as the sentinels of this package (ErrNotFound, ErrSizeMismatch,
// ...): wrap them with %w and the host's errors.Is finds them (see ToStatus). The helpers
// CopyExact, ExpectEOF, Config.OnlyKnown, TempNames, TempName and RandomTempName are what
// backends would otherwise each write again.
//
// Package storagetest holds the conformance suite every plugin should run in its tests,
// and storagetest/plugintest helpers for a plugin's own tests. Package pluginhost is the
// host side of the protocol.
package sdk
