package sdk

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// sentinels lists every error that crosses the plugin boundary, with its wire code and
// reason (written out here, not taken from errorKinds: they are the protocol, and a change
// must show up as a failing test). The context errors have no reason.
var sentinels = map[string]struct {
	err    error
	code   codes.Code
	reason string
}{
	"not found":            {ErrNotFound, codes.NotFound, "NOT_FOUND"},
	"invalid key":          {ErrInvalidKey, codes.InvalidArgument, "INVALID_KEY"},
	"invalid config":       {ErrInvalidConfig, codes.InvalidArgument, "INVALID_CONFIG"},
	"size mismatch":        {ErrSizeMismatch, codes.DataLoss, "SIZE_MISMATCH"},
	"digest mismatch":      {ErrDigestMismatch, codes.DataLoss, "DIGEST_MISMATCH"},
	"unavailable":          {ErrUnavailable, codes.Unavailable, "UNAVAILABLE"},
	"insufficient storage": {ErrInsufficientStorage, codes.ResourceExhausted, "INSUFFICIENT_STORAGE"},
	"permission":           {ErrPermission, codes.PermissionDenied, "PERMISSION"},
	"not supported":        {ErrNotSupported, codes.Unimplemented, "NOT_SUPPORTED"},
	"not configured":       {ErrNotConfigured, codes.FailedPrecondition, "NOT_CONFIGURED"},
	"stale receipt":        {ErrStaleReceipt, codes.FailedPrecondition, "STALE_RECEIPT"},
	"canceled":             {context.Canceled, codes.Canceled, ""},
	"deadline exceeded":    {context.DeadlineExceeded, codes.DeadlineExceeded, ""},
}

// reasonOf returns the reason of the ErrorInfo detail of ErrorDomain in err's status.
func reasonOf(err error) string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == ErrorDomain {
			return info.GetReason()
		}
	}
	return ""
}

func TestErrorRoundTrip(t *testing.T) {
	t.Parallel()
	if len(errorKinds)+2 != len(sentinels) {
		t.Fatalf("errorKinds has %d entries, the test knows %d sentinels: update the test", len(errorKinds), len(sentinels)-2)
	}
	for name, tc := range sentinels {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			orig := fmt.Errorf("local: put videos/a.mp4: %w", tc.err)
			wire := ToStatus(orig)
			if got := status.Code(wire); got != tc.code {
				t.Errorf("ToStatus code = %v, want %v", got, tc.code)
			}
			if got := reasonOf(wire); got != tc.reason {
				t.Errorf("ToStatus reason = %q, want %q", got, tc.reason)
			}
			if msg := status.Convert(wire).Message(); msg != orig.Error() {
				t.Errorf("ToStatus message = %q, want the error's text %q", msg, orig.Error())
			}
			if tc.reason != "" && IsWireError(orig) != true {
				t.Errorf("IsWireError(%q) = false", orig)
			}
			back := FromStatus(wire)
			if !errors.Is(back, tc.err) {
				t.Errorf("FromStatus(ToStatus(%q)) = %q, does not wrap the sentinel", orig, back)
			}
			for other, o := range sentinels {
				if o.err != tc.err && errors.Is(back, o.err) {
					t.Errorf("FromStatus(ToStatus(%q)) = %q also wraps %s", orig, back, other)
				}
			}
			if !strings.Contains(back.Error(), "local: put videos/a.mp4") {
				t.Errorf("FromStatus lost the message: %q", back)
			}
			if wrapped := fmt.Errorf("stat videos/a.mp4: %w", back); !errors.Is(wrapped, tc.err) {
				t.Errorf("errors.Is fails through a further wrap of %q", back)
			}
		})
	}
}

// withReason returns a status of code and msg whose ErrorInfo has reason in domain.
func withReason(t *testing.T, code codes.Code, msg, domain, reason string) error {
	t.Helper()
	st, err := status.New(code, msg).WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: domain})
	if err != nil {
		t.Fatal(err)
	}
	return st.Err()
}

func TestErrorEdgeCases(t *testing.T) {
	t.Parallel()
	// The reason decides, not the code or the text: a plugin may send a code of its
	// choosing as long as the reason is one of ours.
	plain := errors.New("disk on fire")
	direct := status.Error(codes.Aborted, "already a status")
	tests := map[string]struct {
		in       error // given to ToStatus, unless wire is set
		wire     error // given to FromStatus directly (a plugin not built with this sdk)
		code     codes.Code
		want     error  // sentinel the result must wrap; nil: none
		also     error  // a second sentinel it must wrap
		contains string // part of the final message
	}{
		"unknown error":         {in: plain, code: codes.Internal, contains: "disk on fire"},
		"plugin exited":         {in: ErrPluginExited, code: codes.Internal, contains: "storage plugin exited"},
		"status passes through": {in: direct, code: codes.Aborted, contains: "already a status"},
		"both sentinels kept":   {in: fmt.Errorf("%w: %w", ErrPermission, ErrInvalidConfig), code: codes.InvalidArgument, want: ErrInvalidConfig, also: ErrPermission},
		"deadline wrapped":      {in: fmt.Errorf("s3: %w", context.DeadlineExceeded), code: codes.DeadlineExceeded, want: context.DeadlineExceeded},
		"foreign not found":     {wire: status.Error(codes.NotFound, "no such object"), code: codes.NotFound, want: ErrNotFound, contains: "no such object"},
		"foreign data loss":     {wire: status.Error(codes.DataLoss, "bad bytes"), code: codes.DataLoss, want: ErrSizeMismatch},
		"foreign tagged digest": {wire: status.Error(codes.DataLoss, "digest_mismatch: bad bytes"), code: codes.DataLoss, want: ErrDigestMismatch, contains: "bad bytes"},
		"foreign unknown code":  {wire: status.Error(codes.Aborted, "odd"), code: codes.Aborted, contains: "odd"},
		"old plugin's tag":      {wire: status.Error(codes.FailedPrecondition, "stale_receipt: part 3"), code: codes.FailedPrecondition, want: ErrStaleReceipt, contains: "part 3"},
		"tag of another code":   {wire: status.Error(codes.NotFound, "stale_receipt: part 3"), code: codes.NotFound, want: ErrNotFound, contains: "stale_receipt: part 3"},
		"reason over code":      {wire: withReason(t, codes.Internal, "odd code", ErrorDomain, "DIGEST_MISMATCH"), code: codes.Internal, want: ErrDigestMismatch, contains: "odd code"},
		"reason over tag":       {wire: withReason(t, codes.DataLoss, "size_mismatch: x", ErrorDomain, "DIGEST_MISMATCH"), code: codes.DataLoss, want: ErrDigestMismatch},
		"other domain ignored":  {wire: withReason(t, codes.PermissionDenied, "no", "example.com", "NOT_FOUND"), code: codes.PermissionDenied, want: ErrPermission},
		"unknown reason":        {wire: withReason(t, codes.FailedPrecondition, "later", ErrorDomain, "FROM_THE_FUTURE"), code: codes.FailedPrecondition, want: ErrNotConfigured, contains: "later"},
		"not a status":          {wire: plain, code: codes.Unknown, contains: "disk on fire"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			wire := tc.wire
			if wire == nil {
				wire = ToStatus(tc.in)
			}
			if got := status.Code(wire); got != tc.code {
				t.Errorf("code = %v, want %v", got, tc.code)
			}
			back := FromStatus(wire)
			if back == nil {
				t.Fatal("FromStatus returned nil")
			}
			for _, s := range sentinels {
				want := s.err == tc.want || s.err == tc.also
				if errors.Is(back, s.err) != want {
					t.Errorf("FromStatus = %q: errors.Is(%v) = %v, want %v", back, s.err, !want, want)
				}
			}
			if !strings.Contains(back.Error(), tc.contains) {
				t.Errorf("FromStatus = %q, want it to contain %q", back, tc.contains)
			}
		})
	}
	if ToStatus(nil) != nil || FromStatus(nil) != nil {
		t.Error("nil must stay nil both ways")
	}
}
