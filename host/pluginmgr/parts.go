package pluginmgr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/pluginhost"
)

// Parts returns the part-wise limits of the running plugin, or nil when it stores objects
// whole only (or has not started yet).
func (m *Manager) Parts() *sdk.PartLimits {
	if info := m.info.Load(); info != nil {
		return info.Parts
	}
	return nil
}

// StagedReads tells whether the running plugin reads staged parts itself (see
// Options.StagingDir): a *pluginhost.StagedPart given to PutPart then costs the host no
// read and no send.
func (m *Manager) StagedReads() bool {
	info := m.info.Load()
	return info != nil && info.StagedReads
}

// PartFiles tells whether the host may write parts into the running plugin's part files
// itself (Options.PartFiles and a plugin with sdk.PartFiles): see OpenPartFile and
// RecordPart.
func (m *Manager) PartFiles() bool {
	return m.opt.PartFiles && m.OffersPartFiles()
}

// OffersPartFiles tells whether the running plugin offers part files, whatever
// Options.PartFiles says: parts written into them before the host restarted with it off
// are still read back from them.
func (m *Manager) OffersPartFiles() bool {
	info := m.info.Load()
	return info != nil && info.PartFiles
}

// partFileTimeout bounds a PartFile call (at most StallTimeout): the plugin only names a
// file it has open, and a part PUT waits for it before it reads its body.
const partFileTimeout = 10 * time.Second

// OpenPartFile opens the data file of a part-wise object for the host to write parts into
// or read them back (pluginhost.Remote.OpenPartFile): for writing only while PartFiles,
// for reading while OffersPartFiles. The plugin must answer within partFileTimeout, or it
// is killed.
func (m *Manager) OpenPartFile(ctx context.Context, handle []byte, flag int) (*os.File, error) {
	if !m.OffersPartFiles() || (flag != os.O_RDONLY && !m.PartFiles()) {
		return nil, fmt.Errorf("part file: %w: not offered", sdk.ErrNotSupported)
	}
	var f *os.File
	err := m.bounded(ctx, min(partFileTimeout, m.opt.StallTimeout), func(ctx context.Context, remote pluginhost.Remote) error {
		var err error
		f, err = remote.OpenPartFile(ctx, handle, flag)
		return err
	})
	return f, err
}

// RecordPart records a part that the host wrote into the part file (sdk.PartFiles). The
// plugin must answer within StallTimeout, or it is killed.
func (m *Manager) RecordPart(ctx context.Context, handle []byte, p sdk.PartInfo) ([]byte, error) {
	var receipt []byte
	err := m.bounded(ctx, m.opt.StallTimeout, func(ctx context.Context, remote pluginhost.Remote) error {
		var err error
		receipt, err = remote.RecordPart(ctx, handle, p)
		return err
	})
	return receipt, err
}

// bounded runs a unary call that must end within limit: a plugin that takes longer is
// killed (it restarts on the next call) and the call fails with sdk.ErrPluginExited.
func (m *Manager) bounded(ctx context.Context, limit time.Duration, call func(context.Context, pluginhost.Remote) error) error {
	remote, client, err := m.current(ctx)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	err = call(cctx, remote)
	if err != nil && ctx.Err() == nil && errors.Is(cctx.Err(), context.DeadlineExceeded) {
		m.kill(client, fmt.Sprintf("no answer from the plugin for %s", limit))
		return fmt.Errorf("%w: the plugin did not answer for %s and was killed; it restarts on the next call",
			sdk.ErrPluginExited, limit)
	}
	return m.exited(err)
}

// BeginObject starts a part-wise object (sdk.PartStorage).
func (m *Manager) BeginObject(ctx context.Context, key string, spec sdk.ObjectSpec) ([]byte, error) {
	remote, err := m.get(ctx)
	if err != nil {
		return nil, err
	}
	h, err := remote.BeginObject(ctx, key, spec)
	return h, m.exited(err)
}

// PutPart stores one part (sdk.PartStorage). A plugin that stops consuming data for
// StallTimeout is killed, and the call fails with an error wrapping sdk.ErrPluginExited.
func (m *Manager) PutPart(ctx context.Context, handle []byte, p sdk.PartInfo, r io.Reader) ([]byte, error) {
	remote, client, err := m.current(ctx)
	if err != nil {
		return nil, err
	}
	var receipt []byte
	err = m.watchStall(ctx, client, r, func(ctx context.Context, r io.Reader) error {
		var err error
		receipt, err = remote.PutPart(ctx, handle, p, r)
		return err
	})
	return receipt, err
}

// CommitObject commits a part-wise object (sdk.PartStorage). The plugin must answer within
// commitTimeout, or it is killed and the call fails with sdk.ErrPluginExited: a backend
// that hangs in the commit (a frozen S3 server) must not keep the upload finalizing for
// ever.
func (m *Manager) CommitObject(ctx context.Context, handle []byte, receipts [][]byte, sum []byte) (sdk.Object, error) {
	var obj sdk.Object
	err := m.bounded(ctx, m.commitTimeout(len(receipts)), func(ctx context.Context, remote pluginhost.Remote) error {
		var err error
		obj, err = remote.CommitObject(ctx, handle, receipts, sum)
		return err
	})
	return obj, err
}

// commitTimeout bounds a commit of parts parts: StallTimeout, plus a second per part for
// servers that copy the parts into the object (versitygw took 22 s for 205 parts of 50 MiB).
func (m *Manager) commitTimeout(parts int) time.Duration {
	return m.opt.StallTimeout + time.Duration(parts)*time.Second
}

// AbortObject aborts a part-wise object (sdk.PartStorage).
func (m *Manager) AbortObject(ctx context.Context, key string, handle []byte) error {
	remote, err := m.get(ctx)
	if err != nil {
		return err
	}
	return m.exited(remote.AbortObject(ctx, key, handle))
}

// watchStall runs call with a reader over r and kills client when no data is read from it
// for StallTimeout (including the wait for the plugin's answer after the last byte).
func (m *Manager) watchStall(ctx context.Context, client *plugin.Client, r io.Reader, call func(context.Context, io.Reader) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr := &progressReader{r: r}
	pr.touch()
	var through io.Reader = pr
	if sp, ok := r.(*pluginhost.StagedPart); ok {
		// Keep the part's file visible to PutPart; its bytes, if sent, still pass pr.
		pr.r = sp.Reader
		through = &pluginhost.StagedPart{Reader: pr, Path: sp.Path, CRC32C: sp.CRC32C}
	}
	stalled := make(chan struct{})
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(min(m.opt.StallTimeout/4, time.Second))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if time.Since(pr.last()) > m.opt.StallTimeout {
					close(stalled)
					m.kill(client, fmt.Sprintf("no progress on a delivery for %s", m.opt.StallTimeout))
					cancel()
					return
				}
			}
		}
	}()
	err := call(ctx, through)
	close(done)
	select {
	case <-stalled:
		return fmt.Errorf("%w: the plugin made no progress for %s and was killed; it restarts on the next call",
			sdk.ErrPluginExited, m.opt.StallTimeout)
	default:
	}
	return m.exited(err)
}
