package ident

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"math/big"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// counting returns a reader of the bytes 0, 1, 2, …
func counting() io.Reader {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return bytes.NewReader(b)
}

// spec is the timestamp of the example in the ULID specification, whose
// first ten characters are 01ARYZ6S41.
var spec = time.UnixMilli(1469918176385)

func TestNewVectors(t *testing.T) {
	tests := []struct {
		name string
		now  time.Time
		rand io.Reader
		want string
	}{
		{"epoch, zero randomness", time.UnixMilli(0), bytes.NewReader(make([]byte, 10)), "00000000000000000000000000"},
		{"spec time, zero randomness", spec, bytes.NewReader(make([]byte, 10)), "01ARYZ6S410000000000000000"},
		{"spec time, counting randomness", spec, counting(), "01ARYZ6S41000G40R40M30E209"},
		{"sub-millisecond part ignored", spec.Add(999 * time.Microsecond), counting(), "01ARYZ6S41000G40R40M30E209"},
		{"2026, top random bit set", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), bytes.NewReader(append([]byte{0x80}, make([]byte, 9)...)), "01KDVDNA00G000000000000000"},
		{"last millisecond, all ones", time.UnixMilli(maxMillis), bytes.NewReader(bytes.Repeat([]byte{0xff}, 10)), "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"},
	}
	for _, tt := range tests {
		got, err := New(tt.now, tt.rand)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, got, tt.want)
		}
		if !Valid(got) {
			t.Errorf("%s: Valid(%s) = false", tt.name, got)
		}
	}
}

// reference encodes the ULID of ms and r with math/big, independently of
// encode.
func reference(ms int64, r []byte) string {
	n := new(big.Int).Lsh(big.NewInt(ms), 80)
	n.Or(n, new(big.Int).SetBytes(r))
	var out []byte
	for range Len {
		out = append(out, alphabet[new(big.Int).And(n, big.NewInt(31)).Int64()])
		n.Rsh(n, 5)
	}
	slices.Reverse(out)
	return string(out)
}

func TestNewMatchesReference(t *testing.T) {
	for range 500 {
		var rb [16]byte
		if _, err := rand.Read(rb[:]); err != nil {
			t.Fatal(err)
		}
		ms := int64(new(big.Int).SetBytes(rb[10:]).Uint64() & maxMillis)
		got, err := New(time.UnixMilli(ms), bytes.NewReader(rb[:10]))
		if err != nil {
			t.Fatal(err)
		}
		if want := reference(ms, rb[:10]); got != want {
			t.Fatalf("ms %d, random %x: got %s, want %s", ms, rb[:10], got, want)
		}
	}
}

func TestNewOrder(t *testing.T) {
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	steps := []time.Duration{0, time.Millisecond, time.Second, time.Hour, 24 * time.Hour, 365 * 24 * time.Hour}
	var prev string
	for i, d := range steps {
		for range 50 {
			// Random parts at random: later ids must sort after earlier
			// ones whatever their random bits.
			id, err := New(base.Add(d), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			if i > 0 && id <= prev {
				t.Fatalf("id at +%v = %s does not sort after id at +%v = %s", d, id, steps[i-1], prev)
			}
		}
		// The largest id of this millisecond, for the next step.
		var err error
		prev, err = New(base.Add(d), bytes.NewReader(bytes.Repeat([]byte{0xff}, 10)))
		if err != nil {
			t.Fatal(err)
		}
	}
	// The same millisecond shares the time prefix.
	a, _ := New(base, rand.Reader)
	b, _ := New(base.Add(500*time.Microsecond), rand.Reader)
	if a[:10] != b[:10] {
		t.Errorf("ids of one millisecond: prefixes %s and %s differ", a[:10], b[:10])
	}
}

func TestNewUnique(t *testing.T) {
	now := time.Now()
	seen := make(map[string]bool)
	for range 10000 {
		id, err := New(now, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if seen[id] {
			t.Fatalf("duplicate id %s", id)
		}
		seen[id] = true
	}
}

func TestNewErrors(t *testing.T) {
	boom := errors.New("entropy source failed")
	tests := []struct {
		name string
		now  time.Time
		rand io.Reader
		is   error
	}{
		{"before 1970", time.UnixMilli(-1), counting(), nil},
		{"zero time", time.Time{}, counting(), nil},
		{"after the last millisecond", time.UnixMilli(maxMillis + 1), counting(), nil},
		{"empty reader", spec, bytes.NewReader(nil), io.EOF},
		{"short reader", spec, bytes.NewReader(make([]byte, 9)), io.ErrUnexpectedEOF},
		{"failing reader", spec, iotest.ErrReader(boom), boom},
	}
	for _, tt := range tests {
		id, err := New(tt.now, tt.rand)
		if err == nil {
			t.Errorf("%s: got %s, want an error", tt.name, id)
			continue
		}
		if id != "" {
			t.Errorf("%s: got id %q with the error, want none", tt.name, id)
		}
		if tt.is != nil && !errors.Is(err, tt.is) {
			t.Errorf("%s: got error %v, want it to wrap %v", tt.name, err, tt.is)
		}
		if !strings.HasPrefix(err.Error(), "ident.New: ") {
			t.Errorf("%s: error %q lacks the op", tt.name, err)
		}
	}
}

func TestValid(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"01ARYZ6S41TSV4RRFFQ69G5FAV", true},
		{"00000000000000000000000000", true},
		{"7ZZZZZZZZZZZZZZZZZZZZZZZZZ", true},
		{"0123456789ABCDEFGHJKMNPQRS", true},
		{"0TVWXYZ0000000000000000000", true},

		{"", false},
		{"01ARYZ6S41TSV4RRFFQ69G5FA", false},   // 25
		{"01ARYZ6S41TSV4RRFFQ69G5FAVA", false}, // 27
		{"80000000000000000000000000", false},  // beyond 128 bits
		{"ZZZZZZZZZZZZZZZZZZZZZZZZZZ", false},
		{"01aryz6s41tsv4rrffq69g5fav", false}, // lowercase: not canonical
		{"01ARYZ6S41TSV4RRFFQ69G5FAv", false},
		{"01ARYZ6S41TSV4RRFFQ69G5FAI", false}, // I, L, O, U are not in the alphabet
		{"01ARYZ6S41TSV4RRFFQ69G5FAL", false},
		{"01ARYZ6S41TSV4RRFFQ69G5FAO", false},
		{"01ARYZ6S41TSV4RRFFQ69G5FAU", false},
		{"01ARYZ6S41TSV4RRFFQ69G5FA-", false},
		{"01ARYZ6S41TSV4RRFFQ69G5FA ", false},
		{" 1ARYZ6S41TSV4RRFFQ69G5FAV", false},
		{"01ARYZ6S41TSV4RRFFQ69G5FA\x00", false},
		{"01ARYZ6S41TSV4RRFFQ69G5F\u00c9", false}, // 26 bytes, 25 runes
		{"../../../../../../etc/pass", false},
		{"0189e6b3-6c2a-7d4e-9f3a-1b", false},
	}
	for _, tt := range tests {
		if len(tt.in) == Len && !tt.want && tt.in[0] <= '7' && strings.Trim(tt.in, alphabet) == "" {
			t.Fatalf("test case %q is valid", tt.in)
		}
		if got := Valid(tt.in); got != tt.want {
			t.Errorf("Valid(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// FuzzValid checks Valid against the definition: an id is valid exactly when
// it decodes to a 128-bit number that encodes back to it.
func FuzzValid(f *testing.F) {
	f.Add("01ARYZ6S41TSV4RRFFQ69G5FAV")
	f.Add("7ZZZZZZZZZZZZZZZZZZZZZZZZZ")
	f.Add("80000000000000000000000000")
	f.Add("01aryz6s41tsv4rrffq69g5fav")
	f.Add("01ARYZ6S41TSV4RRFFQ69G5FAI")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		want := len(s) == Len
		n := new(big.Int)
		for i := 0; want && i < len(s); i++ {
			d := strings.IndexByte(alphabet, s[i])
			want = d >= 0
			n.Lsh(n, 5).Or(n, big.NewInt(int64(d)))
		}
		want = want && n.BitLen() <= 128
		if got := Valid(s); got != want {
			t.Fatalf("Valid(%q) = %v, want %v", s, got, want)
		}
		if want {
			var b [16]byte
			n.FillBytes(b[:])
			if got := encode(&b); got != s {
				t.Fatalf("%q decodes and encodes to %q", s, got)
			}
		}
	})
}
