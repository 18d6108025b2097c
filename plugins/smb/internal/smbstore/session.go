package smbstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/hirochachacha/go-smb2"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

const (
	// connectTimeout bounds dial, login and mount.
	connectTimeout = 15 * time.Second
	// opTimeout bounds one SMB request or metadata operation (stat, mkdir, rename, remove,
	// one 1 MiB write). go-smb2 waits for an answer without limit: a server that stops
	// answering would hang the store, so a session whose operation takes longer is dropped.
	opTimeout = 2 * time.Minute
	// cleanupTimeout bounds removing a temporary file after a failure.
	cleanupTimeout = 30 * time.Second
)

// NTSTATUS codes (MS-ERREF) the store tells apart.
const (
	statusLogonFailure         = 0xC000006D
	statusAccountRestriction   = 0xC000006E
	statusPasswordExpired      = 0xC0000071
	statusAccountDisabled      = 0xC0000072
	statusAccountLockedOut     = 0xC0000234
	statusBadNetworkName       = 0xC00000CC
	statusNetworkNameDeleted   = 0xC00000C9
	statusUserSessionDeleted   = 0xC0000203
	statusNetworkSessionExpire = 0xC000035C
	statusConnectionDisconnect = 0xC000020C
	statusDiskFull             = 0xC000007F
	statusQuotaExceeded        = 0xC0000044
)

// session is one TCP connection with a logged-in SMB session and the mounted share.
type session struct {
	conn  net.Conn
	sess  *smb2.Session
	share *smb2.Share
}

// close ends a session nobody uses any more: it unmounts, logs off and closes the connection,
// without waiting long for a server that does not answer. It must not be called while the
// session may still be in use: go-smb2 blocks forever in requests made after a Logoff.
func (s *session) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.share.WithContext(ctx).Umount()
	_ = s.sess.WithContext(ctx).Logoff()
	_ = s.conn.Close()
}

// connect dials the server, logs in and mounts the share.
func (st *Store) connect(ctx context.Context) (*session, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", st.cfg.addr())
	if err != nil {
		return nil, fmt.Errorf("%w: cannot reach SMB server %s: %w", sdk.ErrUnavailable, st.cfg.addr(), err)
	}
	dialer := &smb2.Dialer{Initiator: &smb2.NTLMInitiator{User: st.cfg.User, Password: st.cfg.Password, Domain: st.cfg.Domain}}
	sess, err := dialer.DialContext(ctx, conn)
	if err != nil {
		_ = conn.Close()
		if code, ok := ntStatus(err); ok && isLogonFailure(code) {
			return nil, fmt.Errorf("%w: SMB login to %s as %q failed: wrong user name or password, or the account is disabled: %w",
				sdk.ErrPermission, st.cfg.addr(), st.cfg.User, err)
		}
		return nil, st.mapError(fmt.Errorf("SMB login to %s: %w", st.cfg.addr(), err))
	}
	share, err := sess.WithContext(ctx).Mount(st.cfg.Share)
	if err != nil {
		_ = conn.Close()
		if code, ok := ntStatus(err); ok && code == statusBadNetworkName {
			return nil, fmt.Errorf("%w: share %q not found on SMB server %s (SMB_SHARE): %w", sdk.ErrInvalidConfig, st.cfg.Share, st.cfg.addr(), err)
		}
		return nil, st.mapError(fmt.Errorf("mounting share %q on %s: %w", st.cfg.Share, st.cfg.addr(), err))
	}
	st.log.Debug("connected", "addr", st.cfg.addr(), "share", st.cfg.Share)
	return &session{conn: conn, sess: sess, share: share}, nil
}

// begin registers an operation; it fails once the store is closed. Every exported method
// brackets its work with begin and end.
func (st *Store) begin() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		return fmt.Errorf("%w: SMB store is closed", sdk.ErrUnavailable)
	}
	st.active++
	return nil
}

// end unregisters an operation. The last one to end after Close closes the session.
func (st *Store) end() {
	st.mu.Lock()
	st.active--
	var s *session
	if st.closed && st.active == 0 {
		s, st.cur = st.cur, nil
	}
	st.mu.Unlock()
	if s != nil {
		s.close()
	}
}

// session returns the current session, connecting when there is none.
func (st *Store) session(ctx context.Context) (*session, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.cur == nil {
		s, err := st.connect(ctx)
		if err != nil {
			return nil, err
		}
		st.cur = s
	}
	return st.cur, nil
}

// drop forgets s if it is still the current session and closes its connection, so the
// next operation connects again. It does not log off: other operations may still be using
// s, and closing the connection makes them fail at once (go-smb2 hangs after a Logoff).
// The server releases the session's open files.
func (st *Store) drop(s *session) {
	st.mu.Lock()
	if st.cur == s {
		st.cur = nil
	}
	st.mu.Unlock()
	_ = s.conn.Close()
}

// watch drops s and calls cancel when the operation it guards is not done within opTimeout;
// call the returned function when it is done.
func (st *Store) watch(s *session, cancel context.CancelFunc) (done func()) {
	t := time.AfterFunc(opTimeout, func() {
		st.log.Warn("SMB server did not answer in time; dropping the connection", "addr", st.cfg.addr(), "timeout", opTimeout)
		st.drop(s)
		cancel()
	})
	return func() { t.Stop() }
}

// do runs op on the share of the current session, bound to ctx. When op fails because the
// connection broke, it reconnects and runs op once more. op must be safe to repeat.
func (st *Store) do(ctx context.Context, op func(fs *smb2.Share) error) error {
	return st.run(ctx, func(_ *session, fs *smb2.Share) error { return op(fs) })
}

// run is do for operations that need the session too.
func (st *Store) run(ctx context.Context, op func(s *session, fs *smb2.Share) error) error {
	for attempt := 1; ; attempt++ {
		s, err := st.session(ctx)
		if err != nil {
			return err
		}
		opCtx, cancel := context.WithCancel(ctx)
		done := st.watch(s, cancel)
		err = op(s, s.share.WithContext(opCtx))
		timedOut := err != nil && opCtx.Err() != nil && ctx.Err() == nil
		done()
		cancel()
		if timedOut {
			err = fmt.Errorf("%w: SMB server %s did not answer within %v: %w", sdk.ErrUnavailable, st.cfg.addr(), opTimeout, err)
		}
		if err == nil || ctx.Err() != nil || !(timedOut || isConnError(err)) {
			return err
		}
		st.drop(s)
		if attempt == 2 {
			return err
		}
		st.log.Warn("SMB connection lost; reconnecting", "addr", st.cfg.addr(), "error", err)
	}
}

// isConnError reports whether err means the session is unusable and a new connection may
// succeed.
func isConnError(err error) bool {
	var te *smb2.TransportError
	if errors.As(err, &te) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	if code, ok := ntStatus(err); ok {
		switch code {
		case statusNetworkNameDeleted, statusUserSessionDeleted, statusNetworkSessionExpire, statusConnectionDisconnect:
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// ntStatus returns the NTSTATUS code the server answered with, if err carries one.
func ntStatus(err error) (uint32, bool) {
	var re *smb2.ResponseError
	if errors.As(err, &re) {
		return re.Code, true
	}
	return 0, false
}

func isLogonFailure(code uint32) bool {
	switch code {
	case statusLogonFailure, statusAccountRestriction, statusPasswordExpired, statusAccountDisabled, statusAccountLockedOut:
		return true
	}
	return false
}

// mapError wraps err with the sdk sentinel that matches it. Context errors and errors that
// already wrap a sentinel are returned as they are.
func (st *Store) mapError(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || sdk.IsWireError(err) {
		return err
	}
	var ce *smb2.ContextError
	if errors.As(err, &ce) {
		return fmt.Errorf("%w: %w", ce.Err, err)
	}
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%w: %w", sdk.ErrNotFound, err)
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("%w: the SMB server denied access (user %q): %w", sdk.ErrPermission, st.cfg.User, err)
	case isConnError(err):
		return fmt.Errorf("%w: connection to SMB server %s lost: %w", sdk.ErrUnavailable, st.cfg.addr(), err)
	}
	if code, ok := ntStatus(err); ok && (code == statusDiskFull || code == statusQuotaExceeded) {
		return fmt.Errorf("%w: %w", sdk.ErrInsufficientStorage, err)
	}
	return err
}

// cleanupContext returns a context for cleaning up after a failure: it keeps the values of
// ctx but not its cancellation.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
}
