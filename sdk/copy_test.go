package sdk_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

var errBoom = errors.New("boom")

// failWriter accepts n bytes, then fails.
type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		m := w.n
		w.n = 0
		return m, errBoom
	}
	w.n -= len(p)
	return len(p), nil
}

// shortWriter claims to write less than it was given, without an error.
type shortWriter struct{}

func (shortWriter) Write(p []byte) (int, error) { return len(p) / 2, nil }

// slowStart returns (0, nil) a few times before delegating.
type slowStart struct {
	zeros int
	r     io.Reader
}

func (s *slowStart) Read(p []byte) (int, error) {
	if s.zeros > 0 {
		s.zeros--
		return 0, nil
	}
	return s.r.Read(p)
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

func TestCopyExact(t *testing.T) {
	t.Parallel()
	const buf = sdk.CopyBufferSize
	big := pattern(3*buf + 7)
	tests := map[string]struct {
		r       func(b []byte) io.Reader // nil: bytes.NewReader
		n       int                      // bytes of big the reader holds
		size    int64                    // declared size
		w       io.Writer                // nil: a bytes.Buffer
		wantErr error                    // nil: success, exactly n bytes written
	}{
		"empty":                {n: 0, size: 0},
		"one byte":             {n: 1, size: 1},
		"buffer minus one":     {n: buf - 1, size: buf - 1},
		"one buffer":           {n: buf, size: buf},
		"buffer plus one":      {n: buf + 1, size: buf + 1},
		"several buffers":      {n: len(big), size: int64(len(big))},
		"one byte reads":       {n: 5000, size: 5000, r: func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) }},
		"half reads":           {n: buf + 3, size: buf + 3, r: func(b []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) }},
		"eof with data":        {n: 1000, size: 1000, r: func(b []byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) }},
		"zero reads first":     {n: 1000, size: 1000, r: func(b []byte) io.Reader { return &slowStart{3, bytes.NewReader(b)} }},
		"short by one":         {n: 999, size: 1000, wantErr: sdk.ErrSizeMismatch},
		"short by a buffer":    {n: buf, size: 2 * buf, wantErr: sdk.ErrSizeMismatch},
		"nothing for one":      {n: 0, size: 1, wantErr: sdk.ErrSizeMismatch},
		"long by one":          {n: 1001, size: 1000, wantErr: sdk.ErrSizeMismatch},
		"long at buffer edge":  {n: buf + 1, size: buf, wantErr: sdk.ErrSizeMismatch},
		"one for nothing":      {n: 1, size: 0, wantErr: sdk.ErrSizeMismatch},
		"long, one byte reads": {n: 11, size: 10, wantErr: sdk.ErrSizeMismatch, r: func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) }},
		"negative size":        {n: 0, size: -1, wantErr: sdk.ErrSizeMismatch},
		"read error at once":   {n: 0, size: 10, wantErr: errBoom, r: func([]byte) io.Reader { return iotest.ErrReader(errBoom) }},
		"read error midway": {n: buf + 5, size: 2 * buf, wantErr: errBoom, r: func(b []byte) io.Reader {
			return io.MultiReader(bytes.NewReader(b), iotest.ErrReader(errBoom))
		}},
		"read error instead of eof": {n: 100, size: 100, wantErr: errBoom, r: func(b []byte) io.Reader {
			return io.MultiReader(bytes.NewReader(b), iotest.ErrReader(errBoom))
		}},
		"timeout":     {n: 2 * buf, size: 2 * buf, wantErr: iotest.ErrTimeout, r: func(b []byte) io.Reader { return iotest.TimeoutReader(bytes.NewReader(b)) }},
		"write error": {n: 2 * buf, size: 2 * buf, w: &failWriter{n: buf + 10}, wantErr: errBoom},
		"short write": {n: 100, size: 100, w: shortWriter{}, wantErr: io.ErrShortWrite},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			src := big[:tc.n]
			var r io.Reader = bytes.NewReader(src)
			if tc.r != nil {
				r = tc.r(src)
			}
			var out bytes.Buffer
			w := tc.w
			if w == nil {
				w = &out
			}
			sum, err := sdk.CopyExact(w, r, tc.size)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || sum != nil {
					t.Fatalf("CopyExact = %x, %v; want no sum and an error wrapping %v", sum, err, tc.wantErr)
				}
				if tc.wantErr != sdk.ErrSizeMismatch && errors.Is(err, sdk.ErrSizeMismatch) {
					t.Errorf("CopyExact error %v also wraps ErrSizeMismatch", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("CopyExact: %v", err)
			}
			want := sha256.Sum256(src)
			if !bytes.Equal(sum, want[:]) {
				t.Errorf("sum = %x, want %x", sum, want)
			}
			if !bytes.Equal(out.Bytes(), src) {
				t.Errorf("wrote %d bytes, want the %d bytes read", out.Len(), len(src))
			}
		})
	}
}

// stuck answers every Read with (0, nil).
type stuck struct{}

func (stuck) Read([]byte) (int, error) { return 0, nil }

func TestExpectEOF(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	tests := map[string]struct {
		r    io.Reader
		want error // nil: no error
	}{
		"at the end":    {r: bytes.NewReader(nil)},
		"a byte more":   {r: bytes.NewReader([]byte{0}), want: sdk.ErrSizeMismatch},
		"read error":    {r: iotest.ErrReader(boom), want: boom},
		"no progress":   {r: stuck{}, want: io.ErrNoProgress},
		"EOF with data": {r: iotest.DataErrReader(bytes.NewReader([]byte{1})), want: sdk.ErrSizeMismatch},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := sdk.ExpectEOF(tc.r)
			if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Errorf("ExpectEOF = %v, want %v", err, tc.want)
			}
		})
	}
}
