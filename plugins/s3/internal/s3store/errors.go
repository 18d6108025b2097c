package s3store

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// mapError translates an S3 client error into one wrapping the matching sdk sentinel, with a
// message an operator can act on in front of the SDK's own text. Context errors and errors
// that already wrap a sentinel are returned as they are.
func (s *Store) mapError(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || sdk.IsWireError(err) {
		return err
	}
	status := 0
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch code := ae.ErrorCode(); code {
		case "NoSuchBucket":
			return fmt.Errorf("%w: bucket %q does not exist (NoSuchBucket): %w", sdk.ErrInvalidConfig, s.cfg.Bucket, err)
		case "NoSuchKey", "NotFound":
			return fmt.Errorf("%w: %w", sdk.ErrNotFound, err)
		case "NoSuchUpload":
			return fmt.Errorf("%w: S3 no longer knows the multipart upload (aborted, completed or expired): %w", sdk.ErrNotFound, err)
		case "BadDigest", "XAmzContentSHA256Mismatch", "InvalidDigest":
			return fmt.Errorf("%w: S3 refused the bytes it received (%s): %w", sdk.ErrDigestMismatch, code, err)
		case "IncompleteBody":
			return fmt.Errorf("%w: S3 received fewer bytes than announced (%s): %w", sdk.ErrSizeMismatch, code, err)
		case "SignatureDoesNotMatch", "InvalidAccessKeyId", "XAdminUserNotFound", "ExpiredToken", "InvalidToken", "TokenRefreshRequired",
			"AuthorizationHeaderMalformed", "InvalidSecurity", "MissingSecurityHeader":
			return fmt.Errorf("%w: S3 rejected the credentials (%s): %w", sdk.ErrPermission, code, err)
		case "AccessDenied", "AllAccessDisabled", "AccountProblem", "Forbidden":
			return fmt.Errorf("%w: S3 denied access to bucket %q (%s): %w", sdk.ErrPermission, s.cfg.Bucket, code, err)
		case "SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout":
			return fmt.Errorf("%w: S3 answered %s: %w", sdk.ErrUnavailable, code, err)
		case "EntityTooLarge", "QuotaExceeded", "StorageFull", "XMinioStorageFull":
			return fmt.Errorf("%w: S3 refused the object (%s): %w", sdk.ErrInsufficientStorage, code, err)
		}
	}
	switch {
	case status == 403:
		return fmt.Errorf("%w: S3 answered 403 Forbidden for bucket %q: %w", sdk.ErrPermission, s.cfg.Bucket, err)
	case status >= 500:
		return fmt.Errorf("%w: S3 answered HTTP %d: %w", sdk.ErrUnavailable, status, err)
	}
	var se *smithyhttp.RequestSendError
	var ne net.Error
	if errors.As(err, &se) || errors.As(err, &ne) {
		return fmt.Errorf("%w: cannot reach S3 at %s: %w", sdk.ErrUnavailable, s.endpoint(), err)
	}
	return err
}

func (s *Store) endpoint() string {
	if s.cfg.Endpoint != "" {
		return s.cfg.Endpoint
	}
	return "AWS (" + s.cfg.Region + ")"
}

// cleanupContext returns a context for cleaning up after a failed operation: it keeps the
// values of ctx but not its cancellation, so an abort still runs when ctx was cancelled.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
}
