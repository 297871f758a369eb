package hj212

// Command codes (CN), HJ 212-2017 table 9. Platform → data logger requests
// and data logger → platform uploads share a code where the table gives one
// to both.
const (
	CNSetTimeout       = "1000" // set OverTime and ReCount
	CNGetTime          = "1011" // get (platform) / upload (logger) the logger's time
	CNSetTime          = "1012" // set the logger's time
	CNTimeCalibRequest = "1013" // logger asks the platform to set its time (notice)
	CNGetRtdInterval   = "1061" // get / upload RtdInterval
	CNSetRtdInterval   = "1062" // set RtdInterval
	CNGetMinInterval   = "1063" // get / upload MinInterval
	CNSetMinInterval   = "1064" // set MinInterval
	CNSetPassword      = "1072" // set PW (NewPW)
	CNRealtime         = "2011" // real-time data: start (platform) / upload (logger)
	CNStopRealtime     = "2012" // stop real-time data (notice)
	CNRunState         = "2021" // treatment facility run state: start / upload
	CNStopRunState     = "2022" // stop run state (notice)
	CNDay              = "2031" // day data: request BeginTime/EndTime / upload
	CNDayRunTime       = "2041" // facility run time per day: request / upload
	CNMinute           = "2051" // minute data: request BeginTime/EndTime / upload
	CNHour             = "2061" // hour data: request BeginTime/EndTime / upload
	CNRestartTime      = "2081" // logger uploads its start-up time (RestartTime)
	CNRequestResponse  = "9011" // logger: request answered (QnRtn)
	CNExecResult       = "9012" // logger: request executed (ExeRtn)
	CNNoticeResponse   = "9013" // answer to a notice
	CNDataResponse     = "9014" // answer to a data upload
	// CNHeartbeat is the heartbeat of HJ 212-2025 as the public
	// implementations write it (answered with 9013). Unverified against the
	// 2025 text; 2017 reserves 9015-9999.
	CNHeartbeat = "9015"
)

// System codes (ST), HJ 212-2017 table 5 (from GB/T 16706-1996).
const (
	STSurfaceWater    = "21" // 地表水质量监测
	STAirQuality      = "22" // 空气质量监测
	STNoise           = "23" // 声环境质量监测
	STGroundWater     = "24" // 地下水质量监测
	STSoil            = "25" // 土壤质量监测
	STSeaWater        = "26" // 海水质量监测
	STVOC             = "27" // 挥发性有机物监测
	STAirSource       = "31" // 大气环境污染源
	STSurfaceWaterSrc = "32" // 地表水体环境污染源
	STGroundWaterSrc  = "33" // 地下水体环境污染源
	STSeaSource       = "34" // 海洋环境污染源
	STSoilSource      = "35" // 土壤环境污染源
	STNoiseSource     = "36" // 声环境污染源
	STVibration       = "37" // 振动环境污染源
	STRadioactive     = "38" // 放射性环境污染源
	STDust            = "39" // 工地扬尘污染源
	STElectromagnetic = "41" // 电磁环境污染源
	STFlueGasProcess  = "51" // 烟气排放过程监控
	STSewageProcess   = "52" // 污水排放过程监控
	STSystem          = "91" // 系统交互: answers 9011–9014
)

// Data flags (xxxxxx-Flag), HJ 212-2017 table 8.
const (
	DataNormal      = "N" // instrument working normally
	DataStopped     = "F" // instrument stopped (停运)
	DataMaintenance = "M" // produced during maintenance
	DataManual      = "S" // set value entered by hand
	DataFault       = "D" // instrument fault
	DataCalibration = "C" // instrument calibrating
	DataOverRange   = "T" // above the measuring range's upper limit
	DataCommFault   = "B" // communication between instrument and logger failed
)

// QnRtn values, table 7.
const (
	QnRtnReady      = "1"   // 准备执行请求
	QnRtnRejected   = "2"   // 请求被拒绝
	QnRtnBadPW      = "3"   // PW 错误
	QnRtnBadMN      = "4"   // MN 错误
	QnRtnBadST      = "5"   // ST 错误
	QnRtnBadFlag    = "6"   // Flag 错误
	QnRtnBadQN      = "7"   // QN 错误
	QnRtnBadCN      = "8"   // CN 错误
	QnRtnBadCRC     = "9"   // CRC 校验错误
	QnRtnUnknownErr = "100" // 未知错误
)

// ExeRtn values, table 6.
const (
	ExeRtnOK        = "1"   // 执行成功
	ExeRtnFailed    = "2"   // 执行失败，但不知道原因
	ExeRtnCondition = "3"   // 命令请求条件错误
	ExeRtnTimeout   = "4"   // 通讯超时
	ExeRtnBusy      = "5"   // 系统繁忙不能执行
	ExeRtnFault     = "6"   // 系统故障
	ExeRtnNoData    = "100" // 没有数据
)

// Default timeout and retries (HJ 212-2017 table 1): 10 s and 3 retries for
// every network type except ADSL (5 s, 3).
const (
	DefaultOverTime = 10 // seconds
	DefaultReCount  = 3
)

// Factor is a monitoring factor of HJ 212-2017 appendix B as far as this
// package names it.
type Factor struct {
	Code   string // 2017 code
	Old    string // HJ/T 212-2005 code ("" when the table gives none)
	Name   string // English
	NameZH string // the table's name
	Unit   string // the table's default concentration unit, as UCUM-like text
	Format string // the table's default data type (N5.1: 5 integer digits, 1 decimal)
}

// CouUnits are the default units of the period's cumulative amount
// (xxxxxx-Cou, the tables' 缺省计量单位（排放量）) of the factors in Factors
// that have one: a volume for the two flows, a mass for the pollutants
// (HJ 212-2017 tables B.1, B.2; appendix D for how they are computed).
var CouUnits = map[string]string{
	"w00000": "m3", "w01012": "kg", "w01018": "kg", "w01019": "kg", "w01020": "kg", "w21001": "kg", "w21003": "kg",
	"w21011": "kg", "a00000": "m3", "a21002": "kg", "a21004": "kg", "a21005": "kg", "a21026": "kg", "a34002": "g",
	"a34004": "g", "a34013": "kg",
}

// Factors lists the water (table B.1) and air (table B.2) factors this
// project maps. Units are the tables' defaults; a platform may be configured
// otherwise, so uplinks and listeners take units from their configuration.
var Factors = map[string]Factor{
	"w00000": {"w00000", "B01", "waste water flow", "污水", "L/s", "N5.2"},
	"w01001": {"w01001", "001", "pH", "pH 值", "1", "N2.2"},
	"w01009": {"w01009", "", "dissolved oxygen", "溶解氧", "mg/L", "N3.1"},
	"w01010": {"w01010", "", "water temperature", "水温", "Cel", "N3.1"},
	"w01012": {"w01012", "003", "suspended solids", "悬浮物", "mg/L", "N4"},
	"w01014": {"w01014", "", "conductivity", "电导率", "uS/cm", "N3.1"},
	"w01018": {"w01018", "011", "COD", "化学需氧量", "mg/L", "N5.1"},
	"w01019": {"w01019", "", "permanganate index", "高锰酸盐指数", "mg/L", "N3.1"},
	"w01020": {"w01020", "015", "TOC", "总有机碳", "mg/L", "N3.1"},
	"w21001": {"w21001", "065", "total nitrogen", "总氮", "mg/L", "N4.2"},
	"w21003": {"w21003", "060", "ammonia nitrogen", "氨氮", "mg/L", "N4.2"},
	"w21011": {"w21011", "101", "total phosphorus", "总磷", "mg/L", "N3.2"},
	"a00000": {"a00000", "B02", "flue gas flow", "废气", "m3/s", "N6.1"},
	"a01001": {"a01001", "", "air temperature", "温度", "Cel", "N3.1"},
	"a01002": {"a01002", "", "humidity", "湿度", "%", "N3.1"},
	"a01006": {"a01006", "", "air pressure", "气压", "kPa", "N5.3"},
	"a01007": {"a01007", "", "wind speed", "风速", "m/s", "N4.1"},
	"a01008": {"a01008", "", "wind direction", "风向", "deg", "N4"},
	"a19001": {"a19001", "S01", "oxygen", "氧气含量", "%", "N3.1"},
	"a21002": {"a21002", "03", "NOx", "氮氧化物", "mg/m3", "N5.1"},
	"a21004": {"a21004", "", "NO2", "二氧化氮", "mg/m3", "N4.1"},
	"a21005": {"a21005", "04", "CO", "一氧化碳", "mg/m3", "N3.3"},
	"a21026": {"a21026", "02", "SO2", "二氧化硫", "mg/m3", "N5.2"},
	"a34002": {"a34002", "", "PM10", "可吸入颗粒物 PM10", "ng/m3", "N3.3"},
	"a34004": {"a34004", "", "PM2.5", "细微颗粒物 PM2.5", "ng/m3", "N3.3"},
	"a34013": {"a34013", "01", "smoke dust", "烟尘", "mg/m3", "N4"},
}
