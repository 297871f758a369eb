package trend

import (
	"math"
	"testing"
	"time"
)

func TestFormatDuration(t *testing.T) {
	const m, h = time.Minute, time.Hour
	cases := []struct {
		d      time.Duration
		en, zh string
	}{
		{0, "now", "即将"},
		{-5 * m, "now", "即将"},
		{20 * time.Second, "1 m", "1 分钟"}, // at least a minute
		{90 * time.Second, "2 m", "2 分钟"}, // to the nearest minute, halves up
		{89 * time.Second, "1 m", "1 分钟"},
		{45 * m, "45 m", "45 分钟"},
		{59*m + 29*time.Second, "59 m", "59 分钟"},
		{59*m + 30*time.Second, "1 h", "1 小时"},
		{h, "1 h", "1 小时"},
		{2*h + 10*m, "2 h 10 m", "2 小时 10 分钟"},
		{2*h + 10*m + 29*time.Second, "2 h 10 m", "2 小时 10 分钟"},
		{24 * h, "24 h", "24 小时"},
		{47*h + 59*m, "47 h 59 m", "47 小时 59 分钟"},
		{47*h + 59*m + 30*time.Second, "2 d", "2 天"},
		{48 * h, "2 d", "2 天"},
		{76 * h, "3 d 4 h", "3 天 4 小时"},
		{76*h + 29*m, "3 d 4 h", "3 天 4 小时"},
		{76*h + 30*m, "3 d 5 h", "3 天 5 小时"},
		{71*h + 30*m, "3 d", "3 天"},
		{math.MaxInt64, "106752 d", "106752 天"}, // 2562047 h 47 m rounds up
	}
	for _, c := range cases {
		en, zh := FormatDuration(c.d)
		if en != c.en || zh != c.zh {
			t.Errorf("FormatDuration(%v): got %q, %q; want %q, %q", c.d, en, zh, c.en, c.zh)
		}
	}
}
