package mqttsrc

// testProfile is the shape of an mqtt device profile. The profile loader
// (firmware-profiles) imports this package, so these tests read the shipped
// profile by path; firmware-profiles replays its test vectors.
type testProfile struct {
	Model       string        `yaml:"model"`
	Vendor      string        `yaml:"vendor"`
	Name        string        `yaml:"name"`
	Description string        `yaml:"description"`
	Kind        string        `yaml:"kind"`
	Sources     []string      `yaml:"sources"`
	MQTT        *Mapping      `yaml:"mqtt"`
	Tests       []profileTest `yaml:"tests"`
}

// profileTest is one message and every reading it must give.
type profileTest struct {
	Name   string             `yaml:"name"`
	Topic  string             `yaml:"topic"`
	Input  string             `yaml:"input"`  // the JSON payload
	Expect map[string]float64 `yaml:"expect"` // metric → value, all of them
	Bad    []string           `yaml:"bad"`    // metrics whose quality must be bad
}

// soilProfileFile is the shipped ChirpStack soil-sensor profile.
const soilProfileFile = "../../firmware-profiles/chirpstack/soil-sensor.yaml"
