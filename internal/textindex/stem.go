package textindex

// stem strips English inflections from w, a word of lower-case ASCII
// letters, in place. It applies stemStep until nothing changes; every rule
// shortens the word, so this ends, and the result is a fixed point:
// stem(stem(w)) == stem(w), which keeps Tokenize idempotent.
func stem(w []byte) []byte {
	for {
		n := len(w)
		if w = stemStep(w); len(w) == n {
			return w
		}
	}
}

// stemStep applies the first rule that matches w, as listed in the package
// documentation. Each rule changes the length of w, so an unchanged length
// means that no rule matched.
func stemStep(w []byte) []byte {
	n := len(w)
	switch {
	case n >= 5 && hasSuffix(w, "sses"): // classes → class
		return w[:n-2]
	case n >= 5 && hasSuffix(w, "ies"): // studies → study
		return append(w[:n-3], 'y')
	case n == 4 && hasSuffix(w, "ies"): // ties → tie
		return w[:n-1]
	case n >= 5 && hasSuffix(w, "xes"): // boxes → box
		return w[:n-2]
	case n >= 4 && w[n-1] == 's':
		switch w[n-2] {
		case 's', 'u', 'i': // class, status, analysis
			return w
		}
		return w[:n-1] // runs → run
	case n >= 6 && hasSuffix(w, "eed"): // agreed → agree
		return w[:n-1]
	case n >= 5 && hasSuffix(w, "ied"): // studied → study
		return append(w[:n-3], 'y')
	case hasSuffix(w, "ed"):
		if rem := w[:n-2]; len(rem) >= 3 && rem[len(rem)-1] != 'e' && hasVowel(rem) {
			return fixStem(rem) // stopped → stop, hoped → hope
		}
		return w
	case hasSuffix(w, "ing"):
		if rem := w[:n-3]; len(rem) >= 3 && hasVowel(rem) {
			return fixStem(rem) // running → run, making → make
		}
		return w
	case n >= 6 && hasSuffix(w, "ily"): // happily → happy
		return append(w[:n-3], 'y')
	case n >= 6 && hasSuffix(w, "ly"): // quickly → quick
		return w[:n-2]
	case n >= 5 && w[n-1] == 'e' && w[n-2] != 'e': // create → creat, as created → creat
		return w[:n-1]
	}
	return w
}

// fixStem repairs what stripping -ed or -ing leaves: a doubled final
// consonant is undoubled (runn → run), and a three-letter
// consonant-vowel-consonant stem gets its e back (mak → make).
func fixStem(w []byte) []byte {
	n := len(w)
	if n >= 4 && w[n-1] == w[n-2] && !isVowel(w, n-1) {
		switch w[n-1] {
		case 'l', 's', 'z': // falling → fall, missing → miss
			return w
		}
		return w[:n-1]
	}
	if n == 3 && !isVowel(w, 0) && isVowel(w, 1) && !isVowel(w, 2) {
		switch w[2] {
		case 'w', 'x', 'y': // fixing → fix
			return w
		}
		return append(w, 'e')
	}
	return w
}

func hasSuffix(w []byte, s string) bool {
	return len(w) >= len(s) && string(w[len(w)-len(s):]) == s
}

// isVowel reports whether w[i] is a vowel; y is one after the first letter
// (crying → cry).
func isVowel(w []byte, i int) bool {
	switch w[i] {
	case 'a', 'e', 'i', 'o', 'u':
		return true
	case 'y':
		return i > 0
	}
	return false
}

func hasVowel(w []byte) bool {
	for i := range w {
		if isVowel(w, i) {
			return true
		}
	}
	return false
}
