// Command chunked-uploader is the upload server. Configuration comes from the environment
// and ./.env (see README.md); the storage backend runs as the plugin process
// chunked-uploader-plugin-$STORAGE_BACKEND from PLUGIN_DIR. --version prints what the
// binary was built from.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/chunked-uploader/chunked-uploader/host/app"
	"github.com/chunked-uploader/chunked-uploader/host/config"
	"github.com/chunked-uploader/chunked-uploader/sdk/buildinfo"
)

const program = "chunked-uploader"

func main() {
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

// run is the command with its arguments and surroundings; it returns the exit status: 0, 1
// (the server failed; starting again may help) or 2 (the command line or the configuration
// is wrong: systemd's RestartPreventExitStatus=2).
func run(args, environ []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(program, flag.ContinueOnError)
	fs.SetOutput(stderr)
	envFile := fs.String("env-file", ".env", "read settings from this file (environment variables win); the default ./.env may be absent, a file named here must exist")
	check := fs.Bool("check-config", false, "check the configuration, the directories it names and the storage plugin's settings, and exit")
	version := fs.Bool("version", false, "print the version and VCS revision the binary was built from, and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q (settings come from the environment and -env-file)\n", program, fs.Arg(0))
		return 2
	}
	if *version {
		fmt.Fprintf(stdout, "%s %s\n", program, buildinfo.Read())
		return 0
	}
	envFileGiven := false
	fs.Visit(func(f *flag.Flag) { envFileGiven = envFileGiven || f.Name == "env-file" })

	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", program, err)
		return 1
	}
	load := config.Load
	if envFileGiven {
		load = config.LoadFile
	}
	cfg, err := load(environ, *envFile, filepath.Dir(exe))
	if err != nil {
		fmt.Fprintf(stderr, "%s: refusing to start: %v\n", program, err)
		return 2
	}
	log := hclog.New(&hclog.LoggerOptions{
		Name:       program,
		Level:      hclog.LevelFromString(cfg.LogLevel),
		JSONFormat: cfg.LogFormat == "json" || (cfg.LogFormat == "" && !isTerminal(stderr)),
		Output:     stderr,
	})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *check {
		// Only problems are logged: the plugin started for the check logs at info.
		log.SetLevel(hclog.Warn)
		if err := app.CheckConfig(ctx, cfg, log); err != nil {
			fmt.Fprintf(stderr, "%s: configuration check failed: %v\n", program, err)
			if app.Invalid(err) {
				return 2
			}
			return 1
		}
		if n := len(cfg.Warnings); n > 0 {
			fmt.Fprintf(stdout, "configuration ok, with %d warning(s) (above)\n", n)
		} else {
			fmt.Fprintln(stdout, "configuration ok")
		}
		return 0
	}
	if err := app.Run(ctx, cfg, log); err != nil {
		if app.Invalid(err) {
			// As for the settings above: a plain line, and a status that tells systemd a
			// restart cannot fix it (RestartPreventExitStatus=2).
			fmt.Fprintf(stderr, "%s: refusing to start: %v\n", program, err)
			return 2
		}
		log.Error("server stopped", "error", err)
		return 1
	}
	return 0
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
