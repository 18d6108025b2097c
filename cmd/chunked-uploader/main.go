// Command chunked-uploader is the upload server. Configuration comes from the environment
// and ./.env (see README.md); the storage backend runs as the plugin process
// chunked-uploader-plugin-$STORAGE_BACKEND from PLUGIN_DIR.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/chunked-uploader/chunked-uploader/host/app"
	"github.com/chunked-uploader/chunked-uploader/host/config"
)

func main() {
	envFile := flag.String("env-file", ".env", "read settings from this file if it exists (environment variables win)")
	check := flag.Bool("check-config", false, "check the configuration, the directories it names and the storage plugin's settings, and exit")
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
	log := hclog.New(&hclog.LoggerOptions{
		Name:       "chunked-uploader",
		Level:      hclog.LevelFromString(cfg.LogLevel),
		JSONFormat: cfg.LogFormat == "json" || (cfg.LogFormat == "" && !isTerminal(os.Stderr)),
		Output:     os.Stderr,
	})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *check {
		// Only problems are logged: the plugin started for the check logs at info.
		log.SetLevel(hclog.Warn)
		if err := app.CheckConfig(ctx, cfg, log); err != nil {
			fmt.Fprintln(os.Stderr, "chunked-uploader: configuration check failed:", err)
			if app.Invalid(err) {
				os.Exit(2)
			}
			os.Exit(1)
		}
		fmt.Println("configuration ok")
		return
	}
	if err := app.Run(ctx, cfg, log); err != nil {
		if app.Invalid(err) {
			// As for the settings above: a plain line, and a status that tells systemd a
			// restart cannot fix it (RestartPreventExitStatus=2).
			fmt.Fprintln(os.Stderr, "chunked-uploader: refusing to start:", err)
			os.Exit(2)
		}
		log.Error("server stopped", "error", err)
		os.Exit(1)
	}
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
