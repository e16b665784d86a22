package receipt

import "testing"

func BenchmarkCanonicalEvent(b *testing.B) {
	d := signedEvent(b)
	b.SetBytes(int64(len(mustBytes(b, d))))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Canonical(d.obj); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNewEventAndSign(b *testing.B) {
	e, s := vectorEvent(), vectorSigner()
	b.ReportAllocs()
	for b.Loop() {
		d, err := NewEvent(e)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Sign(d, s, signedAt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	for _, d := range []*Doc{signedEvent(b), signedAnswer(b)} {
		keys := keySetOf(statusActive, vectorSigner())
		b.Run(d.Class(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := Verify(d, keys); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	data := mustBytes(b, signedAnswer(b))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCOSE(b *testing.B) {
	d, s := signedEvent(b), vectorSigner()
	keys := keySetOf(statusActive, s)
	out, err := EncodeCOSE(d, s)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := EncodeCOSE(d, s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeCOSE(out, keys); err != nil {
				b.Fatal(err)
			}
		}
	})
}
