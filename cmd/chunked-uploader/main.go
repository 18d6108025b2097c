// Command chunked-uploader is the upload server. Configuration comes from the environment
// and ./.env (see README.md); the storage backend runs as the plugin process
// chunked-uploader-plugin-$STORAGE_BACKEND from PLUGIN_DIR.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/chunked-uploader/chunked-uploader/host/app"
	"github.com/chunked-uploader/chunked-uploader/host/config"
	"github.com/chunked-uploader/chunked-uploader/host/pluginmgr"
	"github.com/chunked-uploader/chunked-uploader/sdk"
)

func main() {
	envFile := flag.String("env-file", ".env", "read settings from this file if it exists (environment variables win)")
	check := flag.Bool("check-config", false, "validate the configuration and exit")
	flag.Parse()

	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "chunked-uploader:", err)
		os.Exit(1)
	}
	cfg, err := config.Load(os.Environ(), *envFile, filepath.Dir(exe))
	if err != nil {
		fmt.Fprintln(os.Stderr, "chunked-uploader: refusing to start:", err)
		os.Exit(2)
	}
	if *check {
		fmt.Println("configuration ok")
		return
	}
	log := hclog.New(&hclog.LoggerOptions{
		Name:       "chunked-uploader",
		Level:      hclog.LevelFromString(cfg.LogLevel),
		JSONFormat: cfg.LogFormat == "json" || (cfg.LogFormat == "" && !isTerminal(os.Stderr)),
		Output:     os.Stderr,
	})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := app.Run(ctx, cfg, log); err != nil {
		log.Error("server stopped", "error", err)
		if errors.Is(err, pluginmgr.ErrRefused) || errors.Is(err, sdk.ErrInvalidConfig) {
			os.Exit(2) // a restart cannot fix it (systemd: RestartPreventExitStatus=2)
		}
		os.Exit(1)
	}
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
