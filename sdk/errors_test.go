package sdk

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// sentinels lists every error that crosses the plugin boundary, with its wire code.
var sentinels = map[string]struct {
	err  error
	code codes.Code
}{
	"not found":            {ErrNotFound, codes.NotFound},
	"invalid key":          {ErrInvalidKey, codes.InvalidArgument},
	"invalid config":       {ErrInvalidConfig, codes.InvalidArgument},
	"size mismatch":        {ErrSizeMismatch, codes.DataLoss},
	"digest mismatch":      {ErrDigestMismatch, codes.DataLoss},
	"unavailable":          {ErrUnavailable, codes.Unavailable},
	"insufficient storage": {ErrInsufficientStorage, codes.ResourceExhausted},
	"permission":           {ErrPermission, codes.PermissionDenied},
	"not supported":        {ErrNotSupported, codes.Unimplemented},
	"not configured":       {ErrNotConfigured, codes.FailedPrecondition},
	"stale receipt":        {ErrStaleReceipt, codes.FailedPrecondition},
	"canceled":             {context.Canceled, codes.Canceled},
	"deadline exceeded":    {context.DeadlineExceeded, codes.DeadlineExceeded},
}

func TestErrorRoundTrip(t *testing.T) {
	t.Parallel()
	if len(errorCodes)+2 != len(sentinels) {
		t.Fatalf("errorCodes has %d entries, the test knows %d sentinels: update the test", len(errorCodes), len(sentinels)-2)
	}
	for name, tc := range sentinels {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			orig := fmt.Errorf("local: put videos/a.mp4: %w", tc.err)
			wire := toStatus(orig)
			if got := status.Code(wire); got != tc.code {
				t.Errorf("toStatus code = %v, want %v", got, tc.code)
			}
			back := fromStatus(wire)
			if !errors.Is(back, tc.err) {
				t.Errorf("fromStatus(toStatus(%q)) = %q, does not wrap the sentinel", orig, back)
			}
			for other, o := range sentinels {
				if o.err != tc.err && errors.Is(back, o.err) {
					t.Errorf("fromStatus(toStatus(%q)) = %q also wraps %s", orig, back, other)
				}
			}
			if !strings.Contains(back.Error(), "local: put videos/a.mp4") {
				t.Errorf("fromStatus lost the message: %q", back)
			}
		})
	}
}

func TestErrorEdgeCases(t *testing.T) {
	t.Parallel()
	plain := errors.New("disk on fire")
	direct := status.Error(codes.Aborted, "already a status")
	tests := map[string]struct {
		in       error // given to toStatus, unless wire is set
		wire     error // given to fromStatus directly (a plugin not built with this sdk)
		code     codes.Code
		want     error  // sentinel the result must wrap; nil: none
		contains string // part of the final message
	}{
		"unknown error":         {in: plain, code: codes.Internal, contains: "disk on fire"},
		"plugin exited":         {in: ErrPluginExited, code: codes.Internal, contains: "storage plugin exited"},
		"status passes through": {in: direct, code: codes.Aborted, contains: "already a status"},
		"first sentinel wins":   {in: fmt.Errorf("%w: %w", ErrInvalidConfig, ErrPermission), code: codes.InvalidArgument, want: ErrInvalidConfig},
		"deadline wrapped":      {in: fmt.Errorf("s3: %w", context.DeadlineExceeded), code: codes.DeadlineExceeded, want: context.DeadlineExceeded},
		"foreign not found":     {wire: status.Error(codes.NotFound, "no such object"), code: codes.NotFound, want: ErrNotFound, contains: "no such object"},
		"foreign data loss":     {wire: status.Error(codes.DataLoss, "bad bytes"), code: codes.DataLoss, want: ErrSizeMismatch},
		"foreign tagged digest": {wire: status.Error(codes.DataLoss, "digest_mismatch: bad bytes"), code: codes.DataLoss, want: ErrDigestMismatch, contains: "bad bytes"},
		"foreign unknown code":  {wire: status.Error(codes.Aborted, "odd"), code: codes.Aborted, contains: "odd"},
		"not a status":          {wire: plain, code: codes.Unknown, contains: "disk on fire"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			wire := tc.wire
			if wire == nil {
				wire = toStatus(tc.in)
			}
			if got := status.Code(wire); got != tc.code {
				t.Errorf("code = %v, want %v", got, tc.code)
			}
			back := fromStatus(wire)
			if back == nil {
				t.Fatal("fromStatus returned nil")
			}
			for _, s := range sentinels {
				if errors.Is(back, s.err) != (s.err == tc.want) {
					t.Errorf("fromStatus = %q: errors.Is(%v) = %v, want %v", back, s.err, !(s.err == tc.want), s.err == tc.want)
				}
			}
			if !strings.Contains(back.Error(), tc.contains) {
				t.Errorf("fromStatus = %q, want it to contain %q", back, tc.contains)
			}
		})
	}
	if toStatus(nil) != nil || fromStatus(nil) != nil {
		t.Error("nil must stay nil both ways")
	}
}
