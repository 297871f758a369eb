package trend

import (
	"strconv"
	"time"
)

// FormatDuration words a time to a crossing for an alert's annotations,
// in English and Chinese: "now"/"即将" for 0 (or less); whole minutes
// below an hour ("45 m", "45 分钟"; at least 1); hours and minutes below
// 48 h ("2 h 10 m", "2 小时 10 分钟"); days and hours from 48 h on
// ("3 d 4 h", "3 天 4 小时"). It rounds to the nearest minute, or hour
// for days, first, so 59 m 40 s reads "1 h"; a zero last part is left
// out ("2 h", "3 d").
func FormatDuration(d time.Duration) (en, zh string) {
	if d <= 0 {
		return "now", "即将"
	}
	m := int64(d / time.Minute)
	if d%time.Minute >= 30*time.Second {
		m++
	}
	m = max(m, 1)
	switch {
	case m < 60:
		return itoa(m) + " m", itoa(m) + " 分钟"
	case m < 48*60:
		return pair(m/60, m%60, " h", " m", " 小时", " 分钟")
	}
	h := (m + 30) / 60
	return pair(h/24, h%24, " d", " h", " 天", " 小时")
}

// pair formats "a big b small", leaving out a zero b.
func pair(a, b int64, bigEN, smallEN, bigZH, smallZH string) (en, zh string) {
	en, zh = itoa(a)+bigEN, itoa(a)+bigZH
	if b != 0 {
		en += " " + itoa(b) + smallEN
		zh += " " + itoa(b) + smallZH
	}
	return en, zh
}

func itoa(i int64) string { return strconv.FormatInt(i, 10) }
