package textindex

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestEncodeTermsVector(t *testing.T) {
	v := loadVectors(t)
	var tfs []TermFreq
	for i, tv := range v.Terms {
		tfs = append(tfs, TermFreq{Term: Term(mustHex(t, tv.Hash)), Freq: v.Freqs[i]})
	}
	slices.SortFunc(tfs, func(a, b TermFreq) int { return compareTerms(a.Term, b.Term) })
	got := EncodeTerms(tfs)
	if want := mustHex(t, v.Encoded); !bytes.Equal(got, want) {
		t.Errorf("EncodeTerms = %x, want %x", got, want)
	}
	back, err := DecodeTerms(got)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(tfs, back); diff != "" {
		t.Errorf("DecodeTerms (-want +got):\n%s", diff)
	}
}

func randomTermFreqs(r *rand.Rand, n int) []TermFreq {
	tfs := make([]TermFreq, n)
	for i := range tfs {
		for j := range tfs[i].Term {
			tfs[i].Term[j] = byte(r.Uint32())
		}
		switch r.IntN(4) {
		case 0:
			tfs[i].Freq = 1
		case 1:
			tfs[i].Freq = math.MaxUint32
		default:
			tfs[i].Freq = 1 + r.Uint32N(1000)
		}
	}
	slices.SortFunc(tfs, func(a, b TermFreq) int { return compareTerms(a.Term, b.Term) })
	return slices.CompactFunc(tfs, func(a, b TermFreq) bool { return a.Term == b.Term })
}

func TestTermsRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 2, 127, 128, 1000} {
		tfs := randomTermFreqs(r, n)
		b := EncodeTerms(tfs)
		got, err := DecodeTerms(b)
		if err != nil {
			t.Fatalf("n=%d: DecodeTerms: %v", n, err)
		}
		if n == 0 {
			if got != nil {
				t.Errorf("DecodeTerms of an empty list = %v, want nil", got)
			}
			if want := []byte{1, 0}; !bytes.Equal(b, want) {
				t.Errorf("EncodeTerms(nil) = %x, want %x", b, want)
			}
			continue
		}
		if diff := cmp.Diff(tfs, got); diff != "" {
			t.Errorf("n=%d: round trip (-want +got):\n%s", n, diff)
		}
	}
}

func TestDecodeTermsRejects(t *testing.T) {
	term := func(b byte) string { return strings.Repeat(string([]byte{b}), 16) }
	tests := []struct {
		name    string
		raw     []byte
		wantErr string
	}{
		{name: "empty", raw: []byte{}, wantErr: "empty input"},
		{name: "wrong version", raw: []byte{0x02, 0x00}, wantErr: "unknown version 0x02"},
		{name: "version zero", raw: []byte{0x00, 0x00}, wantErr: "unknown version 0x00"},
		{name: "no count", raw: []byte{0x01}, wantErr: "count: truncated varint"},
		{name: "truncated count", raw: []byte{0x01, 0x80}, wantErr: "count: truncated varint"},
		{name: "non-minimal count", raw: []byte{0x01, 0x80, 0x00}, wantErr: "count: non-minimal varint"},
		{name: "count overflows", raw: append([]byte{0x01}, bytes.Repeat([]byte{0xff}, 11)...), wantErr: "count: varint overflows"},
		{name: "huge count", raw: []byte{0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, wantErr: "does not fit"},
		{name: "count beyond data", raw: []byte("\x01\x02" + term(1) + "\x01"), wantErr: "count 2 does not fit in 17 bytes"},
		{name: "truncated term", raw: []byte("\x01\x02" + term(1) + "\x80\x80\x80\x80\x01" + term(2)[:13]), wantErr: "term 1: truncated"},
		{name: "missing frequency", raw: []byte("\x01\x02" + term(1) + "\x01" + term(2) + "\x80" + "\x80"), wantErr: "term 1: frequency: truncated varint"},
		{name: "zero frequency", raw: []byte("\x01\x01" + term(1) + "\x00"), wantErr: "term 0: frequency 0 out of range"},
		{name: "frequency too large", raw: []byte("\x01\x01" + term(1) + "\x80\x80\x80\x80\x10"), wantErr: "frequency 4294967296 out of range"},
		{name: "non-minimal frequency", raw: []byte("\x01\x01" + term(1) + "\x81\x00"), wantErr: "term 0: frequency: non-minimal varint"},
		{name: "unsorted", raw: []byte("\x01\x02" + term(2) + "\x01" + term(1) + "\x01"), wantErr: "term 1 is not greater than term 0"},
		{name: "duplicate", raw: []byte("\x01\x02" + term(1) + "\x01" + term(1) + "\x01"), wantErr: "term 1 is not greater than term 0"},
		{name: "trailing bytes", raw: []byte("\x01\x01" + term(1) + "\x01\x00"), wantErr: "1 trailing bytes"},
		{name: "trailing bytes after empty list", raw: []byte{0x01, 0x00, 0x00}, wantErr: "1 trailing bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeTerms(tt.raw)
			if err == nil {
				t.Fatalf("DecodeTerms(%x) = %v, want an error", tt.raw, got)
			}
			if !errors.Is(err, ErrMalformedTerms) {
				t.Errorf("error %v does not wrap ErrMalformedTerms", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestEncodeTermsPanicsOnInvalidLists(t *testing.T) {
	a, b := Term{1}, Term{2}
	for name, tfs := range map[string][]TermFreq{
		"unsorted":       {{b, 1}, {a, 1}},
		"duplicate":      {{a, 1}, {a, 2}},
		"zero frequency": {{a, 0}},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: EncodeTerms did not panic", name)
				}
			}()
			b := EncodeTerms(tfs)
			t.Errorf("%s: EncodeTerms = %s", name, hex.EncodeToString(b))
		}()
	}
}
