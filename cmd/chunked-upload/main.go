// Command chunked-upload uploads files to a chunked-uploader server, resumably: it sends a
// file in parts (several at once), shows the progress, and on Ctrl-C leaves the upload on the
// server so that "chunked-upload resume ID FILE" finishes it later. "chunked-upload help"
// lists the commands, flags and exit codes; "chunked-upload --version" what it was built from.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/chunked-uploader/chunked-uploader/sdk/buildinfo"
	"github.com/chunked-uploader/chunked-uploader/sdk/client"
)

// Exit codes (also in the help text and docs/cli.md).
const (
	exitOK          = 0
	exitFailed      = 1 // the upload, the delivery or the request failed
	exitUsage       = 2
	exitAuth        = 3 // the server refused the API key or a part token (401, 403)
	exitNotFound    = 4 // no such upload (404)
	exitInterrupted = 130
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C ends the process at once
	}()
	os.Exit(run(ctx, os.Args[1:], &env{
		stdout: os.Stdout, stderr: os.Stderr, tty: isTerminal(os.Stderr),
		getenv: os.Getenv, dotenv: ".env",
	}))
}

// env is what a command may use of its surroundings; tests fill it in.
type env struct {
	stdout, stderr io.Writer
	tty            bool // stderr is a terminal: progress is one redrawn line
	getenv         func(string) string
	dotenv         string // file read for API_KEY when neither --api-key nor $API_KEY is set
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// usageError is a mistake in the command line: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// commands maps a command name to its implementation.
var commands = map[string]func(ctx context.Context, e *env, args []string) error{
	"upload": cmdUpload,
	"resume": cmdResume,
	"status": cmdStatus,
	"cancel": cmdCancel,
	"health": cmdHealth,
}

// run executes the command line args and returns the exit code.
func run(ctx context.Context, args []string, e *env) int {
	var g globals
	fs := newFlagSet("chunked-upload", &g)
	version := fs.Bool("version", false, "") // before the command only
	if err := fs.Parse(args); err != nil {
		return e.usageFailure(err)
	}
	if *version {
		fmt.Fprintf(e.stdout, "chunked-upload %s\n", buildinfo.Read())
		return exitOK
	}
	if fs.NArg() == 0 {
		fmt.Fprint(e.stderr, usageText)
		return exitUsage
	}
	name, rest := fs.Arg(0), fs.Args()[1:]
	if name == "help" {
		fmt.Fprint(e.stdout, usageText)
		return exitOK
	}
	cmd, ok := commands[name]
	if !ok {
		return e.usageFailure(usagef("unknown command %q", name))
	}
	// Global flags given before the command carry over.
	return e.exit(ctx, cmd(ctx, e, append(g.args(), rest...)))
}

func (e *env) usageFailure(err error) int {
	if errors.Is(err, errHelp) {
		fmt.Fprint(e.stdout, usageText)
		return exitOK
	}
	fmt.Fprintf(e.stderr, "chunked-upload: %v\nRun 'chunked-upload help' for usage.\n", err)
	return exitUsage
}

// exit prints err (if any) and returns its exit code.
func (e *env) exit(ctx context.Context, err error) int {
	if err == nil {
		return exitOK
	}
	if _, ok := errors.AsType[*usageError](err); ok || errors.Is(err, errHelp) {
		return e.usageFailure(err)
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return exitInterrupted // the command printed how to resume
	}
	if _, ok := errors.AsType[*printedError](err); !ok {
		fmt.Fprintf(e.stderr, "chunked-upload: %v\n", err)
	}
	return exitCode(err)
}

// exitCode is the exit code for a failed command.
func exitCode(err error) int {
	if ae, ok := errors.AsType[*client.APIError](err); ok {
		switch ae.Status {
		case http.StatusUnauthorized, http.StatusForbidden:
			return exitAuth
		case http.StatusNotFound:
			return exitNotFound
		}
	}
	return exitFailed
}
