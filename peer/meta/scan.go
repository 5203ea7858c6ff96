package meta

// countFiles counts the entries of the "files" list in a bencoded info dictionary without
// decoding them, stopping once it passes limit. A dictionary may name "files" more than once
// (the decoder keeps the last): the largest count is returned. Input cut short or malformed
// is counted as far as it goes, so that it is never counted short of what a decoder would
// work through before finding the fault.
func countFiles(info []byte, limit int) int {
	if len(info) == 0 || info[0] != 'd' {
		return 0
	}
	most := 0
	pos := 1
	for pos < len(info) && info[pos] != 'e' {
		start, end, ok := bstring(info, pos)
		if !ok || end >= len(info) {
			return most
		}
		pos = end
		if string(info[start:end]) != "files" || info[pos] != 'l' {
			if pos, ok = skipValue(info, pos); !ok {
				return most
			}
			continue
		}
		n := 0
		for pos++; pos < len(info) && info[pos] != 'e' && n <= limit; n++ {
			if pos, ok = skipValue(info, pos); !ok {
				return max(most, n)
			}
		}
		most = max(most, n)
		if n > limit || pos >= len(info) {
			return most
		}
		pos++ // the list's end
	}
	return most
}

// countTorrentFiles is countFiles for a whole .torrent: the largest count over its "info"
// dictionaries (the decoder keeps the last of repeated keys), found without decoding.
func countTorrentFiles(torrent []byte, limit int) int {
	if len(torrent) == 0 || torrent[0] != 'd' {
		return 0
	}
	most := 0
	for pos := 1; pos < len(torrent) && torrent[pos] != 'e'; {
		start, end, ok := bstring(torrent, pos)
		if !ok || end >= len(torrent) {
			return most
		}
		next, ok := skipValue(torrent, end)
		if !ok {
			if string(torrent[start:end]) == "info" {
				most = max(most, countFiles(torrent[end:], limit))
			}
			return most
		}
		if string(torrent[start:end]) == "info" {
			most = max(most, countFiles(torrent[end:next], limit))
		}
		pos = next
	}
	return most
}

// bstring finds the bencoded string at pos: its bytes are b[start:end], and end is the
// position after it.
func bstring(b []byte, pos int) (start, end int, ok bool) {
	n := 0
	start = pos
	for ; pos < len(b) && b[pos] >= '0' && b[pos] <= '9'; pos++ {
		if n > len(b) {
			return 0, 0, false
		}
		n = n*10 + int(b[pos]-'0')
	}
	if pos == start || pos >= len(b) || b[pos] != ':' || n > len(b)-pos-1 {
		return 0, 0, false
	}
	pos++
	return pos, pos + n, true
}

// skipValue returns the position after the bencoded value at pos (a string, an integer, or a
// list or dictionary with everything in it), without recursion.
func skipValue(b []byte, pos int) (int, bool) {
	depth := 0
	for pos < len(b) {
		switch c := b[pos]; {
		case c == 'i':
			for pos++; pos < len(b) && b[pos] != 'e'; pos++ {
			}
			if pos >= len(b) {
				return 0, false
			}
			pos++
		case c == 'l' || c == 'd':
			depth++
			pos++
		case c == 'e':
			if depth == 0 {
				return 0, false
			}
			depth--
			pos++
		case c >= '0' && c <= '9':
			_, end, ok := bstring(b, pos)
			if !ok {
				return 0, false
			}
			pos = end
		default:
			return 0, false
		}
		if depth == 0 {
			return pos, true
		}
	}
	return 0, false
}
