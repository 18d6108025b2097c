// Package sdk is what storage plugin authors import.
//
// A storage plugin is a separate executable named chunked-uploader-plugin-<name>. The host
// (chunked-uploader) starts it when STORAGE_BACKEND=<name>, talks to it over gRPC through
// hashicorp/go-plugin, and streams every delivered file into its Put. A plugin implements
// Storage and calls Serve from main:
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
// Package storagetest holds the conformance suite every plugin should run in its tests.
package sdk
