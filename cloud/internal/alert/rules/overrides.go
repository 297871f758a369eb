package rules

// Levels returns the rule's levels for one series, with the thresholds of
// the most specific override (device, then site, then profile) applied,
// and where they came from: "device gw/dev", "site s", "profile p" or
// "rule".
func (rl *Rule) LevelsFor(gw, dev, site, profile string) ([]Level, string) {
	pick := func(match func(o *Override) bool) *Override {
		for i := range rl.Overrides {
			if match(&rl.Overrides[i]) {
				return &rl.Overrides[i]
			}
		}
		return nil
	}
	var o *Override
	var source string
	if o = pick(func(o *Override) bool { return o.Device != "" && o.Device == gw+"/"+dev }); o != nil {
		source = "device " + o.Device
	} else if o = pick(func(o *Override) bool { return o.Site != "" && o.Site == site }); o != nil {
		source = "site " + o.Site
	} else if o = pick(func(o *Override) bool { return o.Profile != "" && o.Profile == profile }); o != nil {
		source = "profile " + o.Profile
	}
	if o == nil {
		return rl.Levels, "rule"
	}
	out := make([]Level, len(rl.Levels))
	copy(out, rl.Levels)
	for i := range out {
		v, ok := o.Levels[out[i].Severity.String()]
		if !ok {
			continue
		}
		if v.Set != nil {
			out[i].Set = v.Set
			if v.Clear == nil {
				out[i].Clear = v.Set
			}
		}
		if v.Clear != nil {
			out[i].Clear = v.Clear
		}
	}
	return out, source
}
