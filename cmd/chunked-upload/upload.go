package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/chunked-uploader/chunked-uploader/sdk/client"
)

// transfer is what upload and resume share: the file, the output settings and the client.
type transfer struct {
	e        *env
	g        *globals
	c        *client.Client
	file     string
	view     *progressView
	id       string // known once the server has the upload
	start    time.Time
	told     bool // the upload id was announced
	resuming bool
	last     client.Progress
}

func cmdUpload(ctx context.Context, e *env, args []string) error {
	var g globals
	fs := newFlagSet("upload", &g)
	dir := fs.String("path", "", "")
	name := fs.String("name", "", "")
	conc := fs.Int("concurrency", 4, "")
	webhook := fs.String("webhook", "", "")
	checksum := fs.Bool("checksum", false, "")
	pos, err := parse(fs, &g, args, "FILE")
	if err != nil {
		return err
	}
	remote := *name
	if remote == "" {
		remote = filepath.Base(pos[0])
	}
	if *dir != "" {
		remote = strings.TrimRight(*dir, "/") + "/" + remote
	}
	t, err := e.newTransfer(&g, fs, pos[0], *conc)
	if err != nil {
		return err
	}
	res, err := t.c.UploadFile(ctx, t.file, remote, client.UploadOptions{
		Progress: t.progress, WebhookURL: *webhook, ChecksumSHA256: *checksum,
	})
	return t.finish(ctx, res, err)
}

func cmdResume(ctx context.Context, e *env, args []string) error {
	var g globals
	fs := newFlagSet("resume", &g)
	conc := fs.Int("concurrency", 4, "")
	pos, err := parse(fs, &g, args, "ID", "FILE")
	if err != nil {
		return err
	}
	t, err := e.newTransfer(&g, fs, pos[1], *conc)
	if err != nil {
		return err
	}
	t.id, t.resuming = pos[0], true
	res, err := t.c.ResumeFile(ctx, t.id, t.file, client.UploadOptions{Progress: t.progress})
	return t.finish(ctx, res, err)
}

func (e *env) newTransfer(g *globals, fs *flag.FlagSet, file string, conc int) (*transfer, error) {
	if conc < 1 {
		return nil, usagef("%s: --concurrency must be at least 1", fs.Name())
	}
	c, err := e.newClient(g, true, client.WithConcurrency(conc))
	if err != nil {
		return nil, err
	}
	return &transfer{e: e, g: g, c: c, file: file, view: newProgressView(e.stderr, e.tty), start: time.Now()}, nil
}

// progress is the client's progress callback: it announces the upload id once, then draws.
func (t *transfer) progress(p client.Progress) {
	t.last = p
	if p.FileID != "" && !t.told {
		t.id, t.told = p.FileID, true
		if !t.g.quiet {
			t.view.done()
			if t.resuming {
				fmt.Fprintf(t.e.stderr, "resuming upload %s: %d of %d parts (%s) already on the server\n",
					t.id, p.PartsDone, p.TotalParts, humanBytes(p.ResumedBytes))
			} else {
				fmt.Fprintf(t.e.stderr, "upload id %s (%d parts); if interrupted, resume with: %s\n",
					t.id, p.TotalParts, t.resumeCommand())
			}
		}
	}
	if !t.g.quiet {
		t.view.update(p)
	}
}

// resumeCommand is the command line that resumes this upload.
func (t *transfer) resumeCommand() string {
	cmd := "chunked-upload"
	if t.g.serverFlag {
		cmd += " --server " + shellQuote(t.g.server)
	}
	return cmd + " resume " + shellQuote(t.id) + " " + shellQuote(t.file)
}

// finish prints the result of an upload or resume, or says how to resume after an error.
func (t *transfer) finish(ctx context.Context, res *client.Result, err error) error {
	t.view.done()
	if err != nil {
		if ue, ok := errors.AsType[*client.UploadError](err); ok {
			t.id = ue.FileID
		} else if !t.resuming {
			t.id = "" // init failed: nothing on the server
		}
		interrupted := errors.Is(err, context.Canceled) && ctx.Err() != nil
		switch {
		case interrupted && t.id == "":
			fmt.Fprintln(t.e.stderr, "interrupted before the upload was created: nothing to resume")
		case interrupted:
			fmt.Fprintf(t.e.stderr, "interrupted: upload %s stays on the server with the parts sent so far.\nResume it with:\n  %s\n",
				t.id, t.resumeCommand())
		case t.id != "" && resumable(err):
			fmt.Fprintf(t.e.stderr, "chunked-upload: %v\nThe upload stays on the server; try again with:\n  %s\n", err, t.resumeCommand())
			return &printedError{err}
		}
		return err
	}
	if t.g.json {
		return writeJSON(t.e.stdout, res)
	}
	if !t.g.quiet {
		el := time.Since(t.start)
		sent := t.last.BytesUploaded - t.last.ResumedBytes
		fmt.Fprintf(t.e.stderr, "done: sent %s in %s (%s/s, delivery included)\n", humanBytes(sent), humanDuration(el),
			humanBytes(int64(float64(sent)/max(el.Seconds(), 0.001))))
	}
	fmt.Fprintf(t.e.stdout, "file_id:    %s\nfinal_path: %s\nsize:       %d\nsha256:     %s\nbackend:    %s\n",
		res.FileID, res.FinalPath, res.TotalSize, res.ChecksumSHA256, res.StorageBackend)
	return nil
}

// resumable reports whether resuming could get past err: not for an upload that is gone or
// expired, nor for a file of the wrong size.
func resumable(err error) bool {
	if errors.Is(err, client.ErrSizeMismatch) {
		return false
	}
	ae, ok := errors.AsType[*client.APIError](err)
	return !ok || (ae.Status != http.StatusNotFound && ae.Status != http.StatusGone)
}

// printedError is an error whose message was already printed; only its exit code matters.
type printedError struct{ err error }

func (e *printedError) Error() string { return e.err.Error() }
func (e *printedError) Unwrap() error { return e.err }
