package storagetest

import (
	"bytes"
	"crypto/sha256"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// smallPart is the part size of the part-wise cases unless the backend's minimum is larger:
// two gRPC chunks, the second a short one.
const smallPart = sdk.CopyBufferSize + 4099

// partEnv is one part-wise case's view of the backend under test.
type partEnv struct {
	*env
	st     sdk.Storage // the instance under test (e.s is the Remote over gRPC)
	ps     sdk.PartStorage
	limits sdk.PartLimits
	// wire is the plugin connection when the cases run over gRPC, else nil.
	wire *wire
	// restart stops using this instance as a plugin restart would and returns an env over
	// the instance Options.Reopen builds; nil when Reopen is not set.
	restart func(t *testing.T) *partEnv
	// used are the keys the case stored or began objects under, present those holding an
	// object now.
	used, present []string
}

// partCase is one part-wise conformance case.
type partCase struct {
	name string
	run  func(t *testing.T, e *partEnv)
}

// runParts runs cases under a Parts subtest, after a Support subtest that checks whether the
// backend stores objects part-wise and calls unsupported if it does not; open gives each
// case its env over a fresh backend.
func runParts(t *testing.T, o Options, support func(t *testing.T, unsupported func(why string)), open func(t *testing.T, st sdk.Storage) *partEnv, cases []partCase) {
	t.Helper()
	t.Run("Parts", func(t *testing.T) {
		why := ""
		t.Run("Support", func(t *testing.T) { support(t, func(s string) { why = s }) })
		if why != "" {
			t.Skipf("part-wise cases skipped: %s", why)
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) { c.run(t, open(t, o.New(t))) })
		}
	})
}

// directPartSupport checks whether the Storage New returns implements sdk.PartStorage, and
// its limits.
func directPartSupport(t *testing.T, o Options, unsupported func(why string)) {
	ps, ok := o.New(t).(sdk.PartStorage)
	if !ok {
		unsupported("the Storage does not implement sdk.PartStorage")
		t.Skip("the Storage does not implement sdk.PartStorage")
	}
	l := ps.PartLimits()
	if l.MinPartSize < 0 || l.MaxParts < 0 {
		t.Errorf("PartLimits() = %+v: negative", l)
	}
	t.Logf("PartLimits() = %+v", l)
}

// openDirectParts returns the env of a case run directly against st.
func openDirectParts(t *testing.T, o Options, st sdk.Storage) *partEnv {
	t.Helper()
	ps, ok := st.(sdk.PartStorage)
	if !ok {
		t.Skip("the Storage does not implement sdk.PartStorage")
	}
	e := &partEnv{env: &env{o: o, s: st, ctx: t.Context()}, st: st, ps: ps, limits: ps.PartLimits()}
	if o.Reopen != nil {
		e.restart = func(t *testing.T) *partEnv {
			t.Helper()
			closeStorage(t, st)
			return e.successor(openDirectParts(t, o, o.Reopen(t)))
		}
	}
	return e
}

// closeStorage closes st if it holds resources, as the end of its process would.
func closeStorage(t *testing.T, st sdk.Storage) {
	t.Helper()
	if c, ok := st.(sdk.Closer); ok {
		if err := c.Close(); err != nil {
			t.Errorf("Close of the instance before the restart: %v", err)
		}
	}
}

// successor carries what the case did over to next, the env after a restart.
func (e *partEnv) successor(next *partEnv) *partEnv {
	next.used, next.present = slices.Clone(e.used), slices.Clone(e.present)
	return next
}

// partObject is an object of a part-wise case: its bytes, how they are split, and what its
// key held before (prior, when hadPrior).
type partObject struct {
	key      string
	b        []byte
	sum      []byte
	spec     sdk.ObjectSpec
	sums     [][]byte // of each part
	prior    []byte
	hadPrior bool
}

// splitObject splits b into parts of ps bytes, the last one the remainder.
func splitObject(key string, b []byte, ps int64) *partObject {
	sum := sha256.Sum256(b)
	o := &partObject{key: key, b: b, sum: sum[:], spec: sdk.ObjectSpec{
		Size: int64(len(b)), PartSize: ps, PartCount: int((int64(len(b)) + ps - 1) / ps),
	}}
	for n := range o.spec.PartCount {
		s := sha256.Sum256(o.part(n))
		o.sums = append(o.sums, s[:])
	}
	return o
}

// part returns the bytes of part n.
func (o *partObject) part(n int) []byte {
	off := int64(n) * o.spec.PartSize
	return o.b[off : off+o.spec.PartSizeOf(n)]
}

// info describes part n.
func (o *partObject) info(n int) sdk.PartInfo {
	return sdk.PartInfo{Number: n, Size: o.spec.PartSizeOf(n), SHA256: o.sums[n]}
}

// with returns the object o would be with part n taken from q (of the same spec).
func (o *partObject) with(n int, q *partObject) *partObject {
	b := bytes.Clone(o.b)
	copy(b[int64(n)*o.spec.PartSize:], q.part(n))
	m := splitObject(o.key, b, o.spec.PartSize)
	m.prior, m.hadPrior = o.prior, o.hadPrior
	return m
}

// partInfo describes b as part n.
func partInfo(n int, b []byte) sdk.PartInfo {
	s := sha256.Sum256(b)
	return sdk.PartInfo{Number: n, Size: int64(len(b)), SHA256: s[:]}
}

// partSize is the size of the cases' parts.
func (e *partEnv) partSize() int64 { return max(e.limits.MinPartSize, smallPart) }

// object returns an object of key in n parts (fewer if the backend's MaxParts says so), the
// last one about half a part; its bytes derive from seed.
func (e *partEnv) object(key, seed string, n int) *partObject {
	if e.limits.MaxParts > 0 {
		n = int(min(int64(n), e.limits.MaxParts))
	}
	ps := e.partSize()
	return splitObject(key, data(seed, int(ps*int64(n-1)+ps/2+1)), ps)
}

// priorObject stores b under o's key with Put and records it as what o replaces.
func (e *partEnv) priorObject(t *testing.T, o *partObject, b []byte) {
	t.Helper()
	e.put(t, o.key, bytes.NewReader(b), b)
	o.prior, o.hadPrior = b, true
	e.stored(o.key)
}

// stored records that key holds an object.
func (e *partEnv) stored(key string) {
	e.use(key)
	if !slices.Contains(e.present, key) {
		e.present = append(e.present, key)
	}
}

// use records that the case works on key.
func (e *partEnv) use(key string) {
	if !slices.Contains(e.used, key) {
		e.used = append(e.used, key)
	}
}

// seq returns 0 to n-1.
func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// shuffled returns 0 to n-1 in a fixed pseudo-random order that starts with the last part.
func shuffled(n int) []int {
	p := rand.New(rand.NewPCG(9, uint64(n))).Perm(n)
	if i := slices.Index(p, n-1); i > 0 {
		p[0], p[i] = p[i], p[0]
	}
	return p
}

// garble returns b with every byte changed.
func garble(b []byte) []byte {
	c := bytes.Clone(b)
	for i := range c {
		c[i] ^= 0x01
	}
	return c
}

// withReceipt returns a copy of rs with rs[n] replaced by r.
func withReceipt(rs [][]byte, n int, r []byte) [][]byte {
	c := slices.Clone(rs)
	c[n] = r
	return c
}
