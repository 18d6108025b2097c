package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/chunked-uploader/chunked-uploader/sdk/client"
)

func cmdStatus(ctx context.Context, e *env, args []string) error {
	var g globals
	fs := newFlagSet("status", &g)
	pos, err := parse(fs, &g, args, "ID")
	if err != nil {
		return err
	}
	c, err := e.newClient(&g, true)
	if err != nil {
		return err
	}
	st, err := c.Status(ctx, pos[0], client.StatusOptions{IncludeParts: true})
	if err != nil {
		return err
	}
	if g.json {
		return writeJSON(e.stdout, st)
	}
	printStatus(e.stdout, st)
	return nil
}

// printStatus writes st as aligned "key: value" lines.
func printStatus(w io.Writer, st *client.Status) {
	var pending []int
	var have int64
	for _, p := range st.Parts {
		if p.Status == client.PartPending {
			pending = append(pending, p.Part)
		} else {
			have += min(st.ChunkSize, st.TotalSize-int64(p.Part)*st.ChunkSize)
		}
	}
	name := st.Filename
	if st.Path != "" {
		name = st.Path + "/" + name
	}
	line := func(k, v string) { fmt.Fprintf(w, "%-13s %s\n", k+":", v) }
	line("file_id", st.FileID)
	line("filename", name)
	line("status", st.Status+" (phase "+st.Phase+")")
	line("size", fmt.Sprintf("%d (%s) in %d parts of %s", st.TotalSize, humanBytes(st.TotalSize), st.TotalParts, humanBytes(st.ChunkSize)))
	line("uploaded", fmt.Sprintf("%d of %d parts, %s (%.2f%%)", st.UploadedParts, st.TotalParts, humanBytes(have), st.UploadProgressPercent))
	if len(pending) > 0 {
		line("pending", "parts "+partRanges(pending))
	}
	if st.Status == client.StatusFinalizing {
		line("delivery", fmt.Sprintf("%d%% (%s delivered)", st.FinalizingProgressPercent, humanBytes(st.BytesDelivered)))
	}
	optional := []struct {
		k string
		v *string
	}{{"final_path", st.FinalPath}, {"sha256", st.ChecksumSHA256}, {"error", st.FinalizationError}}
	for _, o := range optional {
		if o.v != nil {
			line(o.k, *o.v)
		}
	}
	line("backend", st.StorageBackend)
	line("created_at", st.CreatedAt)
	line("expires_at", st.ExpiresAt)
}

func cmdCancel(ctx context.Context, e *env, args []string) error {
	var g globals
	fs := newFlagSet("cancel", &g)
	pos, err := parse(fs, &g, args, "ID")
	if err != nil {
		return err
	}
	c, err := e.newClient(&g, true)
	if err != nil {
		return err
	}
	res, err := c.Cancel(ctx, pos[0])
	if err != nil {
		return err
	}
	if g.json {
		return writeJSON(e.stdout, res)
	}
	fmt.Fprintf(e.stdout, "cancelled %s\n", res.FileID)
	return nil
}

func cmdHealth(ctx context.Context, e *env, args []string) error {
	var g globals
	fs := newFlagSet("health", &g)
	if _, err := parse(fs, &g, args); err != nil {
		return err
	}
	c, err := e.newClient(&g, false)
	if err != nil {
		return err
	}
	h, err := c.Health(ctx)
	if h == nil {
		return err
	}
	if g.json {
		if jerr := writeJSON(e.stdout, h); jerr != nil {
			return jerr
		}
	} else {
		msg := ""
		if h.Storage.Message != nil && *h.Storage.Message != "" {
			msg = ": " + strings.TrimSpace(*h.Storage.Message)
		}
		fmt.Fprintf(e.stdout, "server %s; storage %s %s%s\n", h.Status, h.Storage.BackendType, h.Storage.Status, msg)
	}
	if err != nil {
		return &printedError{err} // degraded: the body says it all; exit 1
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
