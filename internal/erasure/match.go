package erasure

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// mentions tells whether body holds one of emails (ASCII case-insensitively) or the
// registrant key of one of regs together with its webinar key (when not ""), each as a
// token of its own rather than part of a longer address or number. JSON string escapes
// are undone first too (a body that is not JSON is searched as it is as well), so an
// address written "ada\u0040example.com" is found.
func mentions(body []byte, emails []string, regs []registration) bool {
	if mentionsIn(body, emails, regs) {
		return true
	}
	if unescaped, ok := unescapeJSONStrings(body); ok {
		return mentionsIn(unescaped, emails, regs)
	}
	return false
}

func mentionsIn(body []byte, emails []string, regs []registration) bool {
	lower := asciiLower(body)
	for _, e := range emails {
		if containsToken(lower, asciiLower([]byte(e)), isEmailBefore, isEmailAfter) {
			return true
		}
	}
	for _, r := range regs {
		if containsToken(lower, []byte(r.registrant), isDigit, isDigit) &&
			(r.webinar == "" || containsToken(lower, []byte(r.webinar), isDigit, isDigit)) {
			return true
		}
	}
	return false
}

// unescapeJSONStrings undoes the \uXXXX and \/ escapes of JSON anywhere in b (a surrogate
// pair becomes its character; a lone surrogate U+FFFD), leaving every other byte, and
// reports whether there was one. It does not parse: b may be any bytes.
func unescapeJSONStrings(b []byte) ([]byte, bool) {
	if !bytes.Contains(b, []byte(`\u`)) && !bytes.Contains(b, []byte(`\/`)) {
		return nil, false
	}
	out := make([]byte, 0, len(b))
	changed := false
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 >= len(b) {
			out = append(out, b[i])
			continue
		}
		switch {
		case b[i+1] == '\\':
			out = append(out, '\\', '\\') // an escaped backslash escapes nothing after it
			i++
		case b[i+1] == '/':
			out = append(out, '/')
			i++
			changed = true
		case b[i+1] == 'u':
			r, n := decodeUnicodeEscape(b[i:])
			if n == 0 {
				out = append(out, b[i])
				continue
			}
			out = utf8.AppendRune(out, r)
			i += n - 1
			changed = true
		default:
			out = append(out, b[i])
		}
	}
	return out, changed
}

// decodeUnicodeEscape decodes \uXXXX (and a following \uXXXX low surrogate) at the start of
// b, returning the rune and the bytes used (0: not an escape).
func decodeUnicodeEscape(b []byte) (rune, int) {
	hi, ok := hex4(b)
	if !ok {
		return 0, 0
	}
	if hi >= 0xD800 && hi < 0xDC00 {
		if lo, ok := hex4(b[6:]); ok && lo >= 0xDC00 && lo < 0xE000 {
			return (hi-0xD800)<<10 + (lo - 0xDC00) + 0x10000, 12
		}
		return utf8.RuneError, 6
	}
	if hi >= 0xDC00 && hi < 0xE000 {
		return utf8.RuneError, 6
	}
	return hi, 6
}

// hex4 reads "\uXXXX" at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return 0, false
	}
	var r rune
	for _, c := range b[2:6] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// replaceMentions replaces every standalone occurrence of one of emails (ASCII
// case-insensitively, the same token rule as mentions) in s by with, and reports whether it
// replaced any. s is text in which escapes are already decoded (jsonb's text, a column).
func replaceMentions(s string, emails []string, with string) (string, bool) {
	changed := false
	for _, e := range emails {
		tok := asciiLower([]byte(e))
		var b strings.Builder
		lower := asciiLower([]byte(s))
		last := 0
		for from := 0; from+len(tok) <= len(lower); {
			i := indexFrom(lower, tok, from)
			if i < 0 {
				break
			}
			end := i + len(tok)
			if (i == 0 || !isEmailBefore(lower, i-1)) && (end == len(lower) || !isEmailAfter(lower, end)) {
				b.WriteString(s[last:i])
				b.WriteString(with)
				last, from, changed = end, end, true
				continue
			}
			from = i + 1
		}
		if last > 0 {
			b.WriteString(s[last:])
			s = b.String()
		}
	}
	return s, changed
}

// containsToken reports whether tok occurs in s with neither a byte before it for which
// joinsBefore holds nor a byte after it for which joinsAfter holds.
func containsToken(s, tok []byte, joinsBefore, joinsAfter func(s []byte, i int) bool) bool {
	if len(tok) == 0 {
		return false
	}
	for from := 0; from+len(tok) <= len(s); {
		i := indexFrom(s, tok, from)
		if i < 0 {
			return false
		}
		end := i + len(tok)
		if (i == 0 || !joinsBefore(s, i-1)) && (end == len(s) || !joinsAfter(s, end)) {
			return true
		}
		from = i + 1
	}
	return false
}

func indexFrom(s, tok []byte, from int) int {
	i := bytes.Index(s[from:], tok)
	if i < 0 {
		return -1
	}
	return from + i
}

func asciiLower(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return out
}

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func isDigit(s []byte, i int) bool { return '0' <= s[i] && s[i] <= '9' }

// isEmailBefore: a byte that would make the match the tail of a longer local part.
func isEmailBefore(s []byte, i int) bool {
	return isAlnum(s[i]) || strings.IndexByte("._%+-", s[i]) >= 0
}

// isEmailAfter: a byte that would make the match the head of a longer domain. A dot ends
// the address unless a label follows it ("ada@example.com." ends a sentence;
// "ada@example.com.au" is another address).
func isEmailAfter(s []byte, i int) bool {
	if s[i] == '.' {
		return i+1 < len(s) && isAlnum(s[i+1])
	}
	return isAlnum(s[i]) || s[i] == '-' || s[i] == '_'
}
