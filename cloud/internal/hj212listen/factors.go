package hj212listen

import "github.com/fieldwatch/fieldwatch/protocols/hj212"

// DefaultFactors maps the factor codes of HJ 212-2017 appendix B that
// protocols/hj212 names (tables B.1 water, B.2 air) to Fieldwatch metrics
// and units, the names the firmware profiles and the alert packs use where
// one exists. A logger's or the section's factors override it; a code in
// neither is stored under the code itself (docs/standards/hj212.md,
// "Fieldwatch as platform").
var DefaultFactors = map[string]Factor{
	"w00000": {Metric: "wastewater_flow", Unit: "L/s", CouUnit: "m³"},   // waste water flow (污水)
	"w01001": {Metric: "water_ph", Unit: ""},                            // pH
	"w01009": {Metric: "dissolved_oxygen", Unit: "mg/L"},                // dissolved oxygen (溶解氧)
	"w01010": {Metric: "water_temperature", Unit: "°C"},                 // water temperature (水温)
	"w01012": {Metric: "suspended_solids", Unit: "mg/L", CouUnit: "kg"}, // suspended solids (悬浮物)
	"w01014": {Metric: "water_conductivity", Unit: "µS/cm"},             // conductivity (电导率)
	"w01018": {Metric: "cod", Unit: "mg/L", CouUnit: "kg"},              // COD (化学需氧量)
	"w01019": {Metric: "codmn", Unit: "mg/L", CouUnit: "kg"},            // permanganate index (高锰酸盐指数)
	"w01020": {Metric: "toc", Unit: "mg/L", CouUnit: "kg"},              // TOC (总有机碳)
	"w21001": {Metric: "total_nitrogen", Unit: "mg/L", CouUnit: "kg"},   // total nitrogen (总氮)
	"w21003": {Metric: "ammonia_nitrogen", Unit: "mg/L", CouUnit: "kg"}, // ammonia nitrogen (氨氮)
	"w21011": {Metric: "total_phosphorus", Unit: "mg/L", CouUnit: "kg"}, // total phosphorus (总磷)
	"a00000": {Metric: "flue_gas_flow", Unit: "m³/s", CouUnit: "m³"},    // flue gas flow (废气)
	"a01001": {Metric: "air_temperature", Unit: "°C"},                   // temperature (温度)
	"a01002": {Metric: "air_humidity", Unit: "%"},                       // humidity (湿度)
	"a01006": {Metric: "air_pressure", Unit: "kPa"},                     // air pressure (气压)
	"a01007": {Metric: "wind_speed", Unit: "m/s"},                       // wind speed (风速)
	"a01008": {Metric: "wind_direction", Unit: "°"},                     // wind direction (风向)
	"a19001": {Metric: "oxygen", Unit: "%"},                             // oxygen (氧气含量)
	"a21002": {Metric: "nox", Unit: "mg/m³", CouUnit: "kg"},             // NOx (氮氧化物)
	"a21004": {Metric: "no2", Unit: "mg/m³", CouUnit: "kg"},             // NO2 (二氧化氮)
	"a21005": {Metric: "co", Unit: "mg/m³", CouUnit: "kg"},              // CO (一氧化碳)
	"a21026": {Metric: "so2", Unit: "mg/m³", CouUnit: "kg"},             // SO2 (二氧化硫)
	"a34002": {Metric: "pm10", Unit: "µg/m³"},                           // PM10: µg/m³ as reported in practice (the table's text reads ng/m³, docs/standards/hj212.md)
	"a34004": {Metric: "pm2_5", Unit: "µg/m³"},                          // PM2.5: as PM10
	"a34013": {Metric: "smoke_dust", Unit: "mg/m³", CouUnit: "kg"},      // smoke dust (烟尘)
}

// The pollutants' CouUnit is the tables' 排放量 unit (kg for those in
// mg/L and mg/m³): a period's emission, concentration × the flow's volume
// (appendix D). PM's is left empty, as its concentration unit is
// unsettled.

// HJ/T 212-2005 loggers send the 2005 codes ("原编码" of appendix B: 011
// for COD, 060 for ammonia nitrogen, 02 for SO2, B01 for waste water flow);
// each maps as its 2017 code does.
func init() {
	for code, f := range hj212.Factors {
		if d, ok := DefaultFactors[code]; ok && f.Old != "" {
			if _, taken := DefaultFactors[f.Old]; !taken {
				DefaultFactors[f.Old] = d
			}
		}
	}
}
