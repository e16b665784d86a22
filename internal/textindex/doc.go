// Package textindex owns the text side of evidence search: it turns text
// into terms, cuts documents into chunks, hashes terms under a tenant's
// index key, encodes a chunk's hashed terms for storage, and ranks chunks
// with BM25 in memory. It has no storage and no network.
//
// # Blind index
//
// Documents are stored encrypted, and so must be what is searchable about
// them. The index therefore holds only keyed hashes of terms: a Term is
// the first 16 bytes of
//
//	HMAC-SHA-256(key, "vaultcrux/index/v1" || 0x00 || term)
//
// under the tenant's 32-byte index key. A Hasher is the only thing in this
// package that sees both a key and terms; what leaves a caller that uses
// it — Analyze's term frequencies, EncodeTerms' bytes, QueryTerms' query —
// is hashes. Without the key, stored Terms cannot be matched to words
// short of guessing the key; with it, equal terms still look equal, so the
// index reveals how often an unknown term occurs (and the lengths of
// chunks), which is the price of searching at all. A query hashed under
// one key finds nothing in an index built under another. The version in
// the domain string names this construction; changing tokenization or
// stemming changes terms and needs a new version and a re-index.
//
// # Terms
//
// Tokenize finds words on the raw text and only then normalises each one,
// so a word's term never depends on the text around it (Split relies on
// this):
//
//   - A word is a run of letters (unicode.IsLetter), decimal digits
//     (unicode.IsDigit) and combining marks (unicode.IsMark). Everything
//     else separates words, invalid UTF-8 included. A letter or digit whose
//     NFKC form is not such a run ("½" → "1⁄2", U+FDFA → four Arabic
//     words) is a separator too, so a word makes at most one term.
//   - An apostrophe (' or ’) between a letter or digit and a letter or
//     digit is dropped and the word goes on: "don't" → "dont", "O'Neill"
//     → "oneill", "user's" → "users" → "user".
//   - Each ideograph (Han) and each hiragana letter is a word of its own,
//     with any marks after it: Chinese and Japanese have no spaces, and a
//     run of them would be one long, unsearchable term. Katakana, Hangul
//     and other scripts form words as above.
//   - The word is NFKC-normalised (so "ﬁ" → "fi", "Ａ" → "A", decomposed
//     and precomposed accents meet), lower-cased rune by rune with
//     unicode.ToLower (no full case folding: "Straße" → "straße", which
//     does not meet "strasse"), and marks left leading it are dropped.
//   - A word now longer than MaxTermBytes (64) bytes is dropped: a run of
//     letters that long is an identifier or an encoding, not a word.
//   - A word of ASCII letters only is stemmed (below); other words,
//     accented Latin and non-Latin scripts included, are kept as they are.
//
// Tokenize is idempotent: tokenizing its terms joined by spaces gives the
// same terms.
//
// # Stemming
//
// The stemmer is a light English suffix stripper, not Porter. It applies
// the first matching rule below (n is the length of the word), and repeats
// until no rule matches; every rule shortens the word, so that ends and the
// stem of a stem is itself:
//
//	-sses → -ss            n >= 5      classes → class
//	-ies  → -y             n >= 5      studies → study
//	-ies  → -ie            n == 4      ties → tie
//	-xes  → -x             n >= 5      boxes → box
//	-s    → (none)         n >= 4, not after s, u or i
//	                                   runs → run; class, status, this stay
//	-eed  → -ee            n >= 6      agreed → agree
//	-ied  → -y             n >= 5      studied → study
//	-ed   → (none) *       stem of 3+ letters with a vowel, not ending in e
//	-ing  → (none) *       stem of 3+ letters with a vowel
//	-ily  → -y             n >= 6      happily → happy
//	-ly   → (none)         n >= 6      quickly → quick; only, early stay
//	-e    → (none)         n >= 5, not after e   create → creat
//
// (*) then a doubled final consonant other than l, s, z is undoubled in a
// stem of 4+ letters (running → run, but falling → fall), and a
// three-letter consonant-vowel-consonant stem not ending in w, x or y gets
// its e back (making → make, hoping → hope). Vowels are a, e, i, o, u, and
// y after the first letter. So connections, connection; run, runs,
// running; create, creates, created, creating each meet, and words of
// three letters or fewer are never changed.
//
// # Chunking
//
// Split cuts a document into pieces of about ChunkOptions.Target tokens.
// Paragraphs are separated by a blank line (a line break, optional white
// space, a line break). Whole paragraphs are packed into a piece while it
// stays within Target tokens; a paragraph of up to Max tokens is never
// cut. A longer paragraph is cut into pieces of at most Target tokens,
// each ending at the last sentence end (".", "!" or "?" followed by white
// space, or a line break) that leaves it more than Target/2 tokens, or
// else after exactly Target tokens; each such piece after the first starts
// Overlap tokens before the end of the previous one, so a passage cut in
// two is still whole in one piece. Pieces that meet at a paragraph
// boundary do not overlap. Pieces are cut only in the gaps between
// tokens, and there in a run of white space, which is trimmed: the first
// run holding a blank line, else the first holding a line break, else the
// first run, so a piece keeps the punctuation that ends its paragraph,
// line or sentence ("end.\""); a gap with no white space (between
// ideographs, say) is cut at the next token. A token is counted as
// Tokenize counts it, so Piece.Tokens == len(Tokenize(Piece.Text)).
//
// # Ranking
//
// Index.Search scores, with BM25, every live chunk that holds at least one
// distinct query term and passes the filter:
//
//	idf(t)   = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))
//	bm25(c)  = Σ_t idf(t) · tf(t,c)·(k1+1) / (tf(t,c) + k1·(1 - b + b·len(c)/avglen))
//
// where N is the number of live chunks, df(t) the number of live chunks
// holding t, and avglen their mean length, all over the whole index
// whatever the filter. It then fuses relevance and recency:
//
//	recency(c) = 0.5^(max(now - created(c), 0) / HalfLife)
//	fused(c)   = WBM25 · bm25(c) / max bm25 + WRecency · recency(c)
//
// the maximum taken over the chunks scored. It returns the k chunks of
// highest fused score, ties broken by smaller ChunkID, so results are
// deterministic.
package textindex
