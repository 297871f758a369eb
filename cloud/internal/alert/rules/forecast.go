package rules

import (
	"time"

	"github.com/fieldwatch/fieldwatch/internal/yamlconf"
)

// ForecastSpec is a forecast rule's measure: the hours until the metric's
// robust trend (Theil–Sen slope over Window, in Buckets equal buckets,
// significant by the Mann–Kendall test at Alpha) reaches Toward; levels
// judge those hours ("<=", "<"). Too few buckets (MinPoints), a trend that
// is not significant, noise larger than the distance left (MaxNoise × the
// residual spread) or a trend away from the target forecast nothing.
type ForecastSpec struct {
	Window    time.Duration `yaml:"window"`
	Buckets   int           `yaml:"buckets"`
	MinPoints int           `yaml:"min_points"`
	Alpha     float64       `yaml:"alpha"`
	Toward    Target        `yaml:"toward"`
}

// Target is the threshold a forecast looks toward: Op Value is the hazard
// side ("<=" 12 is at or below 12).
type Target struct {
	Op    string  `yaml:"op"`
	Value float64 `yaml:"value"`
}

func (rl *Rule) validateForecast(r *yamlconf.Report, p string) {
	f := rl.Forecast
	fp := p + ".forecast"
	if rl.Input.Agg != "last" || rl.Input.Derive != "" {
		r.Errorf(p+".input", "a forecast takes the metric itself (no agg, no derive): it builds its own window")
	}
	if f.Window <= 0 {
		r.Errorf(fp+".window", "is required: the span the trend is fitted over")
	}
	if f.Buckets == 0 {
		f.Buckets = 36
	}
	if f.Buckets < 4 || f.Buckets > 256 {
		r.Errorf(fp+".buckets", "%d is not between 4 and 256", f.Buckets)
	}
	if f.MinPoints == 0 {
		f.MinPoints = 6
	}
	if f.MinPoints < 4 || f.MinPoints > f.Buckets {
		r.Errorf(fp+".min_points", "%d is not between 4 and buckets (%d): fewer points cannot show a trend", f.MinPoints, f.Buckets)
	}
	if f.Alpha == 0 {
		f.Alpha = 0.05
	}
	if f.Alpha <= 0 || f.Alpha >= 0.5 {
		r.Errorf(fp+".alpha", "%g is not a significance level between 0 and 0.5", f.Alpha)
	}
	if !validOp(f.Toward.Op) {
		r.Errorf(fp+".toward.op", "%q is not one of < <= > >=", f.Toward.Op)
	}
	for i, l := range rl.Levels {
		if l.Op != "<" && l.Op != "<=" {
			r.Errorf(yamlconf.Join(p, "levels", i, "op"), "a forecast level is on the hours left before the crossing: use < or <=")
		}
	}
}
