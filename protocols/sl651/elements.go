package sl651

// Form is how an element's data is written.
type Form uint8

const (
	FormBCD     Form = iota // decimal number in BCD, N(Digits,Decimals); length and decimals in the definition byte
	FormTime                // F0: observation time, 5 BCD bytes YYMMDDhhmm
	FormAddress             // F1: station address, 5 bytes, then the classification code in data reports
	FormRest                // F2 manual data, F3 picture, FD flow batch: everything to the end of the body
	FormDRP                 // F4: twelve 5-minute rainfalls, 1 HEX byte each in 0.1 mm, FF invalid
	FormDRZ                 // F5–FC: twelve 5-minute water levels, 2 HEX bytes each in 0.01 m, FFFF invalid
	FormStep                // 04: time step code, 3 BCD bytes day, hour, minute
	FormStatus              // 45: station status and alarms, 4 HEX bytes
)

// Element is an element of SL 651-2014 appendix C, table C.1.
type Element struct {
	ID       uint16 // identifier guide byte (标识符引导符)
	Code     string // ASCII identifier (标识符 ASCII 码)
	NameZH   string // the table's name
	Unit     string // UCUM-like unit of the value ("" when none)
	Digits   int    // N(Digits,Decimals): digits without the point
	Decimals int
	Form     Form
}

// Elements is table C.1 by identifier guide byte: every row with a number
// (N(x) or N(x,y)), and the special identifiers F0–FD, 04 and 45.
// 05 (DT, a duration written HH.mm) is read as a number with 2 decimals.
var Elements = map[uint16]Element{
	0xF0: {ID: 0xF0, Code: "TT", NameZH: "观测时间引导符", Form: FormTime},
	0xF1: {ID: 0xF1, Code: "ST", NameZH: "测站编码引导符", Form: FormAddress},
	0xF2: {ID: 0xF2, Code: "RGZS", NameZH: "人工置数", Form: FormRest},
	0xF3: {ID: 0xF3, Code: "PIC", NameZH: "图片信息", Form: FormRest},
	0xF4: {ID: 0xF4, Code: "DRP", NameZH: "1 小时内每 5 分钟时段雨量", Unit: "mm", Form: FormDRP},
	0xF5: {ID: 0xF5, Code: "DRZ1", NameZH: "1 小时内 5 分钟间隔相对水位 1", Unit: "m", Form: FormDRZ},
	0xF6: {ID: 0xF6, Code: "DRZ2", NameZH: "1 小时内 5 分钟间隔相对水位 2", Unit: "m", Form: FormDRZ},
	0xF7: {ID: 0xF7, Code: "DRZ3", NameZH: "1 小时内 5 分钟间隔相对水位 3", Unit: "m", Form: FormDRZ},
	0xF8: {ID: 0xF8, Code: "DRZ4", NameZH: "1 小时内 5 分钟间隔相对水位 4", Unit: "m", Form: FormDRZ},
	0xF9: {ID: 0xF9, Code: "DRZ5", NameZH: "1 小时内 5 分钟间隔相对水位 5", Unit: "m", Form: FormDRZ},
	0xFA: {ID: 0xFA, Code: "DRZ6", NameZH: "1 小时内 5 分钟间隔相对水位 6", Unit: "m", Form: FormDRZ},
	0xFB: {ID: 0xFB, Code: "DRZ7", NameZH: "1 小时内 5 分钟间隔相对水位 7", Unit: "m", Form: FormDRZ},
	0xFC: {ID: 0xFC, Code: "DRZ8", NameZH: "1 小时内 5 分钟间隔相对水位 8", Unit: "m", Form: FormDRZ},
	0xFD: {ID: 0xFD, Code: "DATA", NameZH: "流速批量数据传输", Form: FormRest},
	0x04: {ID: 0x04, Code: "DR", NameZH: "时间步长码", Form: FormStep},
	0x05: {ID: 0x05, Code: "DT", NameZH: "时段长,降水、引排水、抽水历时", Unit: "HH.mm", Digits: 4, Decimals: 2},
	0x45: {ID: 0x45, Code: "ZT", NameZH: "遥测站状态及报警信息", Form: FormStatus},
	0x01: {ID: 0x01, Code: "AC", NameZH: "断面面积", Unit: "m2", Digits: 8, Decimals: 2},
	0x02: {ID: 0x02, Code: "AI", NameZH: "瞬时气温", Unit: "Cel", Digits: 3, Decimals: 1},
	0x03: {ID: 0x03, Code: "C", NameZH: "瞬时水温", Unit: "Cel", Digits: 3, Decimals: 1},
	0x06: {ID: 0x06, Code: "ED", NameZH: "日蒸发量", Unit: "mm", Digits: 5, Decimals: 1},
	0x07: {ID: 0x07, Code: "EJ", NameZH: "当前蒸发", Unit: "mm", Digits: 5, Decimals: 1},
	0x08: {ID: 0x08, Code: "FL", NameZH: "气压", Unit: "hPa", Digits: 5, Decimals: 0},
	0x09: {ID: 0x09, Code: "GH", NameZH: "闸坝、水库闸门开启高度", Unit: "m", Digits: 5, Decimals: 2},
	0x0A: {ID: 0x0A, Code: "GN", NameZH: "输水设备、闸门(组)编号", Unit: "", Digits: 3, Decimals: 0},
	0x0B: {ID: 0x0B, Code: "GS", NameZH: "输水设备类别", Unit: "", Digits: 1, Decimals: 0},
	0x0C: {ID: 0x0C, Code: "GT", NameZH: "水库、闸坝闸门开启孔数", Unit: "1", Digits: 3, Decimals: 0},
	0x0D: {ID: 0x0D, Code: "GTP", NameZH: "地温", Unit: "Cel", Digits: 3, Decimals: 1},
	0x0E: {ID: 0x0E, Code: "H", NameZH: "地下水瞬时埋深", Unit: "m", Digits: 6, Decimals: 2},
	0x0F: {ID: 0x0F, Code: "HW", NameZH: "波浪高度", Unit: "m", Digits: 5, Decimals: 2},
	0x10: {ID: 0x10, Code: "M10", NameZH: "10 厘米处土壤含水量", Unit: "%", Digits: 4, Decimals: 1},
	0x11: {ID: 0x11, Code: "M20", NameZH: "20 厘米处土壤含水量", Unit: "%", Digits: 4, Decimals: 1},
	0x12: {ID: 0x12, Code: "M30", NameZH: "30 厘米处土壤含水量", Unit: "%", Digits: 4, Decimals: 1},
	0x13: {ID: 0x13, Code: "M40", NameZH: "40 厘米处土壤含水量", Unit: "%", Digits: 4, Decimals: 1},
	0x14: {ID: 0x14, Code: "M50", NameZH: "50 厘米处土壤含水量", Unit: "%", Digits: 4, Decimals: 1},
	0x15: {ID: 0x15, Code: "M60", NameZH: "60 厘米处土壤含水量", Unit: "%", Digits: 4, Decimals: 1},
	0x16: {ID: 0x16, Code: "M80", NameZH: "80 厘米处土壤含水量", Unit: "%", Digits: 4, Decimals: 1},
	0x17: {ID: 0x17, Code: "M100", NameZH: "100 厘米处土壤含水量", Unit: "%", Digits: 4, Decimals: 1},
	0x18: {ID: 0x18, Code: "MST", NameZH: "湿度", Unit: "%", Digits: 4, Decimals: 1},
	0x19: {ID: 0x19, Code: "NS", NameZH: "开机台数", Unit: "1", Digits: 2, Decimals: 0},
	0x1A: {ID: 0x1A, Code: "P1", NameZH: "1 小时时段降水量", Unit: "mm", Digits: 5, Decimals: 1},
	0x1B: {ID: 0x1B, Code: "P2", NameZH: "2 小时时段降水量", Unit: "mm", Digits: 5, Decimals: 1},
	0x1C: {ID: 0x1C, Code: "P3", NameZH: "3 小时时段降水量", Unit: "mm", Digits: 5, Decimals: 1},
	0x1D: {ID: 0x1D, Code: "P6", NameZH: "6 小时时段降水量", Unit: "mm", Digits: 5, Decimals: 1},
	0x1E: {ID: 0x1E, Code: "P12", NameZH: "12 小时时段降水量", Unit: "mm", Digits: 5, Decimals: 1},
	0x1F: {ID: 0x1F, Code: "PD", NameZH: "日降水量", Unit: "mm", Digits: 5, Decimals: 1},
	0x20: {ID: 0x20, Code: "PJ", NameZH: "当前降水量", Unit: "mm", Digits: 5, Decimals: 1},
	0x21: {ID: 0x21, Code: "PN01", NameZH: "1 分钟时段降水量", Unit: "mm", Digits: 5, Decimals: 1},
	0x22: {ID: 0x22, Code: "PN05", NameZH: "5 分钟时段降水量", Unit: "mm", Digits: 5, Decimals: 1},
	0x23: {ID: 0x23, Code: "PN10", NameZH: "10 分钟时段降水量", Unit: "mm", Digits: 5, Decimals: 1},
	0x24: {ID: 0x24, Code: "PN30", NameZH: "30 分钟时段降水量", Unit: "mm", Digits: 5, Decimals: 1},
	0x25: {ID: 0x25, Code: "PR", NameZH: "暴雨量", Unit: "mm", Digits: 5, Decimals: 1},
	0x26: {ID: 0x26, Code: "PT", NameZH: "降水量累计值", Unit: "mm", Digits: 6, Decimals: 1},
	0x27: {ID: 0x27, Code: "Q", NameZH: "瞬时流量、抽水流量", Unit: "m3/s", Digits: 9, Decimals: 3},
	0x28: {ID: 0x28, Code: "Q1", NameZH: "取(排）水口流量 1", Unit: "m3/s", Digits: 9, Decimals: 3},
	0x29: {ID: 0x29, Code: "Q2", NameZH: "取(排）水口流量 2", Unit: "m3/s", Digits: 9, Decimals: 3},
	0x2A: {ID: 0x2A, Code: "Q3", NameZH: "取(排）水口流量 3", Unit: "m3/s", Digits: 9, Decimals: 3},
	0x2B: {ID: 0x2B, Code: "Q4", NameZH: "取(排）水口流量 4", Unit: "m3/s", Digits: 9, Decimals: 3},
	0x2C: {ID: 0x2C, Code: "Q5", NameZH: "取(排）水口流量 5", Unit: "m3/s", Digits: 9, Decimals: 3},
	0x2D: {ID: 0x2D, Code: "Q6", NameZH: "取(排）水口流量 6", Unit: "m3/s", Digits: 9, Decimals: 3},
	0x2E: {ID: 0x2E, Code: "Q7", NameZH: "取(排）水口流量 7", Unit: "m3/s", Digits: 9, Decimals: 3},
	0x2F: {ID: 0x2F, Code: "Q8", NameZH: "取(排）水口流量 8", Unit: "m3/s", Digits: 9, Decimals: 3},
	0x30: {ID: 0x30, Code: "QA", NameZH: "总出库流量、过闸总流量", Unit: "m3/s", Digits: 9, Decimals: 3},
	0x31: {ID: 0x31, Code: "QZ", NameZH: "输水设备流量、过闸(组)流量", Unit: "m3/s", Digits: 9, Decimals: 3},
	0x32: {ID: 0x32, Code: "SW", NameZH: "输沙量", Unit: "10^4.t", Digits: 11, Decimals: 3},
	0x33: {ID: 0x33, Code: "UC", NameZH: "风向", Unit: "", Digits: 2, Decimals: 0},
	0x34: {ID: 0x34, Code: "UE", NameZH: "风力(级)", Unit: "", Digits: 2, Decimals: 0},
	0x35: {ID: 0x35, Code: "US", NameZH: "风速", Unit: "m/s", Digits: 4, Decimals: 1},
	0x36: {ID: 0x36, Code: "VA", NameZH: "断面平均流速", Unit: "m/s", Digits: 5, Decimals: 3},
	0x37: {ID: 0x37, Code: "VJ", NameZH: "当前瞬时流速", Unit: "m/s", Digits: 5, Decimals: 3},
	0x38: {ID: 0x38, Code: "VT", NameZH: "电源电压", Unit: "V", Digits: 4, Decimals: 2},
	0x39: {ID: 0x39, Code: "Z", NameZH: "瞬时河道水位、潮位", Unit: "m", Digits: 7, Decimals: 3},
	0x3A: {ID: 0x3A, Code: "ZB", NameZH: "库(闸、站)下水位", Unit: "m", Digits: 7, Decimals: 3},
	0x3B: {ID: 0x3B, Code: "ZU", NameZH: "库(闸、站)上水位", Unit: "m", Digits: 7, Decimals: 3},
	0x3C: {ID: 0x3C, Code: "Z1", NameZH: "取(排）水口水位 1", Unit: "m", Digits: 7, Decimals: 3},
	0x3D: {ID: 0x3D, Code: "Z2", NameZH: "取(排）水口水位 2", Unit: "m", Digits: 7, Decimals: 3},
	0x3E: {ID: 0x3E, Code: "Z3", NameZH: "取(排）水口水位 3", Unit: "m", Digits: 7, Decimals: 3},
	0x3F: {ID: 0x3F, Code: "Z4", NameZH: "取(排）水口水位 4", Unit: "m", Digits: 7, Decimals: 3},
	0x40: {ID: 0x40, Code: "Z5", NameZH: "取(排）水口水位 5", Unit: "m", Digits: 7, Decimals: 3},
	0x41: {ID: 0x41, Code: "Z6", NameZH: "取(排）水口水位 6", Unit: "m", Digits: 7, Decimals: 3},
	0x42: {ID: 0x42, Code: "Z7", NameZH: "取(排）水口水位 7", Unit: "m", Digits: 7, Decimals: 3},
	0x43: {ID: 0x43, Code: "Z8", NameZH: "取(排）水口水位 8", Unit: "m", Digits: 7, Decimals: 3},
	0x44: {ID: 0x44, Code: "SQ", NameZH: "含沙量", Unit: "kg/m3", Digits: 9, Decimals: 3},
	0x46: {ID: 0x46, Code: "pH", NameZH: "pH 值", Unit: "", Digits: 4, Decimals: 2},
	0x47: {ID: 0x47, Code: "DO", NameZH: "溶解氧", Unit: "mg/L", Digits: 4, Decimals: 1},
	0x48: {ID: 0x48, Code: "COND", NameZH: "电导率", Unit: "uS/cm", Digits: 5, Decimals: 0},
	0x49: {ID: 0x49, Code: "TURB", NameZH: "浊度", Unit: "{turbidity_degree}", Digits: 3, Decimals: 0},
	0x4A: {ID: 0x4A, Code: "CODMN", NameZH: "高锰酸盐指数", Unit: "mg/L", Digits: 4, Decimals: 1},
	0x4B: {ID: 0x4B, Code: "REDOX", NameZH: "氧化还原电位", Unit: "mV", Digits: 5, Decimals: 1},
	0x4C: {ID: 0x4C, Code: "NH4N", NameZH: "氨氮", Unit: "mg/L", Digits: 6, Decimals: 2},
	0x4D: {ID: 0x4D, Code: "TP", NameZH: "总磷", Unit: "mg/L", Digits: 5, Decimals: 3},
	0x4E: {ID: 0x4E, Code: "TN", NameZH: "总氮", Unit: "mg/L", Digits: 5, Decimals: 2},
	0x4F: {ID: 0x4F, Code: "TOC", NameZH: "总有机碳", Unit: "mg/L", Digits: 4, Decimals: 2},
	0x50: {ID: 0x50, Code: "CU", NameZH: "铜", Unit: "mg/L", Digits: 7, Decimals: 4},
	0x51: {ID: 0x51, Code: "ZN", NameZH: "锌", Unit: "mg/L", Digits: 6, Decimals: 4},
	0x52: {ID: 0x52, Code: "SE", NameZH: "硒", Unit: "mg/L", Digits: 7, Decimals: 5},
	0x53: {ID: 0x53, Code: "AS", NameZH: "砷", Unit: "mg/L", Digits: 7, Decimals: 5},
	0x54: {ID: 0x54, Code: "THG", NameZH: "总汞", Unit: "mg/L", Digits: 7, Decimals: 5},
	0x55: {ID: 0x55, Code: "CD", NameZH: "镉", Unit: "mg/L", Digits: 7, Decimals: 5},
	0x56: {ID: 0x56, Code: "PB", NameZH: "铅", Unit: "mg/L", Digits: 7, Decimals: 5},
	0x57: {ID: 0x57, Code: "CHLA", NameZH: "叶绿素 a", Unit: "mg/L", Digits: 4, Decimals: 2},
	0x58: {ID: 0x58, Code: "WP1", NameZH: "水压 1", Unit: "kPa", Digits: 5, Decimals: 2},
	0x59: {ID: 0x59, Code: "WP2", NameZH: "水压 2", Unit: "kPa", Digits: 5, Decimals: 2},
	0x5A: {ID: 0x5A, Code: "WP3", NameZH: "水压 3", Unit: "kPa", Digits: 5, Decimals: 2},
	0x5B: {ID: 0x5B, Code: "WP4", NameZH: "水压 4", Unit: "kPa", Digits: 5, Decimals: 2},
	0x5C: {ID: 0x5C, Code: "WP5", NameZH: "水压 5", Unit: "kPa", Digits: 5, Decimals: 2},
	0x5D: {ID: 0x5D, Code: "WP6", NameZH: "水压 6", Unit: "kPa", Digits: 5, Decimals: 2},
	0x5E: {ID: 0x5E, Code: "WP7", NameZH: "水压 7", Unit: "kPa", Digits: 5, Decimals: 2},
	0x5F: {ID: 0x5F, Code: "WP8", NameZH: "水压 8", Unit: "kPa", Digits: 5, Decimals: 2},
	0x60: {ID: 0x60, Code: "SYL1", NameZH: "水表 1 剩余水量", Unit: "m3", Digits: 11, Decimals: 3},
	0x61: {ID: 0x61, Code: "SYL2", NameZH: "水表 2 剩余水量", Unit: "m3", Digits: 11, Decimals: 3},
	0x62: {ID: 0x62, Code: "SYL3", NameZH: "水表 3 剩余水量", Unit: "m3", Digits: 11, Decimals: 3},
	0x63: {ID: 0x63, Code: "SYL4", NameZH: "水表 4 剩余水量", Unit: "m3", Digits: 11, Decimals: 3},
	0x64: {ID: 0x64, Code: "SYL5", NameZH: "水表 5 剩余水量", Unit: "m3", Digits: 11, Decimals: 3},
	0x65: {ID: 0x65, Code: "SYL6", NameZH: "水表 6 剩余水量", Unit: "m3", Digits: 11, Decimals: 3},
	0x66: {ID: 0x66, Code: "SYL7", NameZH: "水表 7 剩余水量", Unit: "m3", Digits: 11, Decimals: 3},
	0x67: {ID: 0x67, Code: "SYL8", NameZH: "水表 8 剩余水量", Unit: "m3", Digits: 11, Decimals: 3},
	0x68: {ID: 0x68, Code: "SBL1", NameZH: "水表 1 每小时水量", Unit: "m3/h", Digits: 10, Decimals: 2},
	0x69: {ID: 0x69, Code: "SBL2", NameZH: "水表 2 每小时水量", Unit: "m3/h", Digits: 10, Decimals: 2},
	0x6A: {ID: 0x6A, Code: "SBL3", NameZH: "水表 3 每小时水量", Unit: "m3/h", Digits: 10, Decimals: 2},
	0x6B: {ID: 0x6B, Code: "SBL4", NameZH: "水表 4 每小时水量", Unit: "m3/h", Digits: 10, Decimals: 2},
	0x6C: {ID: 0x6C, Code: "SBL5", NameZH: "水表 5 每小时水量", Unit: "m3/h", Digits: 10, Decimals: 2},
	0x6D: {ID: 0x6D, Code: "SBL6", NameZH: "水表 6 每小时水量", Unit: "m3/h", Digits: 10, Decimals: 2},
	0x6E: {ID: 0x6E, Code: "SBL7", NameZH: "水表 7 每小时水量", Unit: "m3/h", Digits: 10, Decimals: 2},
	0x6F: {ID: 0x6F, Code: "SBL8", NameZH: "水表 8 每小时水量", Unit: "m3/h", Digits: 10, Decimals: 2},
	0x70: {ID: 0x70, Code: "VTA", NameZH: "交流 A 相电压", Unit: "V", Digits: 4, Decimals: 1},
	0x71: {ID: 0x71, Code: "VTB", NameZH: "交流 B 相电压", Unit: "V", Digits: 4, Decimals: 1},
	0x72: {ID: 0x72, Code: "VTC", NameZH: "交流 C 相电压", Unit: "V", Digits: 4, Decimals: 1},
	0x73: {ID: 0x73, Code: "VIA", NameZH: "交流 A 相电流", Unit: "A", Digits: 4, Decimals: 1},
	0x74: {ID: 0x74, Code: "VIB", NameZH: "交流 B 相电流", Unit: "A", Digits: 4, Decimals: 1},
	0x75: {ID: 0x75, Code: "VIC", NameZH: "交流 C 相电流", Unit: "A", Digits: 4, Decimals: 1},
}

var byCode = func() map[string]Element {
	m := map[string]Element{}
	for _, e := range Elements {
		m[e.Code] = e
	}
	return m
}()

// ElementByCode finds an element by its ASCII identifier.
func ElementByCode(code string) (Element, bool) {
	e, ok := byCode[code]
	return e, ok
}
