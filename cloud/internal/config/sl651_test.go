package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSL651(t *testing.T) {
	const good = `sl651:
  listen: "127.0.0.1:5001"
  central: 5
  stations:
    - address: "0011223344"
      station: hydro-1
      site: river-north
      name: 北河 1 号站
      site_name: 北河水文站
      password: "03E8"
      elements: {PJ: rainfall_now, "39": water_level_river, VT: "-"}
`
	loadCases(t, []fileCase{
		{"good", good, ""},
		{"off with no stations", "sl651: {central: 5}\n", ""},
		{"stations without listen", "sl651:\n  stations: [{address: \"0011223344\", station: a}]\n",
			"c.yaml:1: sl651.listen: is needed"},
		{"no central", "sl651:\n  listen: \":5001\"\n  stations: [{address: \"0011223344\", station: a}]\n",
			"c.yaml:1: sl651.central: 0 is outside 1..255"},
		{"bad address", "sl651:\n  listen: \":5001\"\n  central: 1\n  stations:\n    - address: \"00112233\"\n      station: a\n",
			"c.yaml:5: sl651.stations[0].address: \"00112233\" is not 10 hex digits"},
		{"unquoted address and password kept as written", "sl651:\n  listen: \":5001\"\n  central: 1\n  stations:\n    - {address: 0011223344, station: a, password: 0123}\n", ""},
		{"duplicate address", "sl651:\n  listen: \":5001\"\n  central: 1\n  stations:\n    - {address: \"0011223344\", station: a}\n    - {address: \"0011223344\", station: b}\n",
			"c.yaml:6: sl651.stations[1].address: 0011223344 is also stations[0]"},
		{"duplicate station", "sl651:\n  listen: \":5001\"\n  central: 1\n  stations:\n    - {address: \"0011223344\", station: a}\n    - {address: \"0011223345\", station: a}\n",
			"c.yaml:6: sl651.stations[1].station: \"a\" is also stations[0]"},
		{"bad station id", "sl651:\n  listen: \":5001\"\n  central: 1\n  stations:\n    - {address: \"0011223344\", station: \"a b\"}\n",
			"c.yaml:5: sl651.stations[0].station"},
		{"non-gateway station", "sl651:\n  listen: \":5001\"\n  central: 1\n  stations:\n    - {address: \"0011223344\", station: fieldwatch-cloud}\n",
			"is a broker user that is not a gateway"},
		{"bad password", "sl651:\n  listen: \":5001\"\n  central: 1\n  stations:\n    - address: \"0011223344\"\n      station: a\n      password: \"12\"\n",
			"c.yaml:7: sl651.stations[0].password: \"12\" is not 4 hex digits"},
		{"unknown element", "sl651:\n  listen: \":5001\"\n  central: 1\n  stations:\n    - address: \"0011223344\"\n      station: a\n      elements:\n        XX: foo\n",
			"c.yaml:8: sl651.stations[0].elements.XX: \"XX\" is not an SL 651 element"},
		{"element without values", "sl651:\n  listen: \":5001\"\n  central: 1\n  stations:\n    - address: \"0011223344\"\n      station: a\n      elements:\n        TT: foo\n",
			"c.yaml:8: sl651.stations[0].elements.TT"},
		{"bad metric", "sl651:\n  listen: \":5001\"\n  central: 1\n  stations:\n    - address: \"0011223344\"\n      station: a\n      elements:\n        Z: \"water level\"\n",
			"c.yaml:8: sl651.stations[0].elements.Z: metric id"},
		{"bad confirm", "sl651:\n  listen: \":5001\"\n  central: 1\n  confirm: ack\n  stations: [{address: \"0011223344\", station: a}]\n",
			"c.yaml:4: sl651.confirm: \"ack\" is not esc or eot"},
		{"bad timezone", "sl651:\n  listen: \":5001\"\n  central: 1\n  timezone: Mars/Olympus\n  stations: [{address: \"0011223344\", station: a}]\n",
			"c.yaml:4: sl651.timezone"},
		{"blank name", "sl651:\n  listen: \":5001\"\n  central: 1\n  stations:\n    - address: \"0011223344\"\n      station: a\n      name: \"  \"\n",
			"c.yaml:7: sl651.stations[0].name: \"  \" is only spaces"},
		{"control character in site name", "sl651:\n  listen: \":5001\"\n  central: 1\n  stations:\n    - address: \"0011223344\"\n      station: a\n      site_name: \"北河\\t站\"\n",
			"c.yaml:7: sl651.stations[0].site_name: \"北河\\t站\": character U+0009"},
		{"typo", "sl651:\n  listen: \":5001\"\n  centrl: 1\n", "c.yaml:3: sl651.centrl: unknown field (did you mean \"central\"?)"},
	})
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte(good), 0o644)
	c, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := c.SL651
	if s.Central != 5 || s.Confirm != ConfirmESC || s.IdleTimeout != 5*time.Minute || s.Interval != time.Hour ||
		s.Stations[0].Password != "03E8" || s.Stations[0].SiteName != "北河水文站" || s.Stations[0].Elements["39"] != "water_level_river" {
		t.Fatalf("decoded %+v", s)
	}
	if el, ok := SL651Element("39"); !ok || el.Code != "Z" {
		t.Fatalf("element 39 = %+v %v", el, ok)
	}
}
