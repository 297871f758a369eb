// Two languages, zh-CN and en: every label of the console, metric and unit
// names, and the choice (navigator.languages, then the switch, remembered
// in localStorage). Alerts bring their own Chinese (summary_cn, cause_cn,
// runbook_cn …); pick() chooses between the two.

const langKey = "fieldwatch-lang";

const dict = {
  en: {
    "app.title": "Fieldwatch",
    "lang.switch": "Language",
    loading: "loading…",
    updated: "updated {time}",
    "summary": "{online}/{stations} stations online · {healthy}/{devices} devices reporting",
    "summary.attention": " · {n} need attention",
    "error.cloud": "Cannot reach the Fieldwatch cloud: {msg}",
    "error.action": "Alert action failed: {msg}",
    "map.title": "Stations",
    "nav.map": "Map", "nav.inventory": "Inventory", "nav.views": "Views",
    "inv.title": "Inventory", "inv.labels": "labels", "inv.export": "CSV",
    "inv.exporttitle": "download this inventory (CSV, UTF-8 for Excel)", "inv.addlabel": "filter by this label",
    "inv.error": "cannot load the inventory: {msg}", "inv.none": "No gateway matches.", "inv.count": "{n} gateways",
    "inv.filter.all": "all", "inv.filter.online": "online", "inv.filter.offline": "offline",
    "inv.state.online": "online", "inv.state.stale": "no response", "inv.state.offline": "offline", "inv.state.unknown": "unknown",
    "inv.col.state": "state", "inv.col.id": "gateway", "inv.col.site": "site", "inv.col.labels": "labels",
    "inv.col.version": "version", "inv.col.arch": "arch", "inv.col.config": "config", "inv.col.uptime": "uptime",
    "inv.col.last_seen": "last seen", "inv.col.backlog": "backlog", "inv.col.disk": "buffer disk", "inv.col.clock": "clock",
    "inv.col.devices": "devices", "inv.col.faulty": "faulty",
    "inv.config.local": "local file", "inv.update": "release pending: {u}", "inv.min": "{n} min", "inv.h": "{n} h", "inv.d": "{n} d",
    "inv.clock.ntp": "NTP", "inv.clock.gps": "GPS", "inv.clock.rtc": "RTC", "inv.clock.unsynced": "unsynced",
    "inv.maxerror": "maximum error {ms} ms",
    "map.legend.fine": "fine", "map.legend.offline": "offline",
    "map.basemap": "coastlines: Natural Earth 1:50m (offline)",
    "map.nolocation": "{n} station(s) without a location are not on the map.",
    "map.cluster": "{n} stations: {ids} (click to zoom in)",
    "map.track": "Buoy track:",
    "stations.none": "No stations yet. Start a gateway, or run `make demo`.",
    "stations.pick": "Station",
    "station.site": "site {site}",
    "station.heard": "last heard {ago}",
    "station.backlog": "backlog of {n} readings at the gateway",
    "station.version": "version {v}",
    "th.device": "device", "th.state": "state", "th.latest": "latest",
    "device.at": "at {lat}, {lon}",
    "device.events": "{n} event(s)",
    "metric.title": "{metric} at {time} ({quality}) — click to chart",
    "events.title": "recent events", "th.event": "event", "th.when": "when", "th.details": "details",
    "event.tag": "tag {key}", "event.reads": "{n} reads", "event.adrift": "ADRIFT", "event.returned": "back on mooring",
    "event.frommooring": "{m} m from mooring", "event.radius": "radius {m} m",
    "history.title": "alert history", "history.none": "No alert history in the last 7 days.",
    "history.backlog": "from backlog",
    "history.th.alert": "warning", "history.th.value": "value", "history.th.threshold": "threshold", "history.th.rule": "rule",
    "history.pending": "pending", "history.resolved": "resolved", "history.inactive": "ended",
    "state.online": "online", "state.offline": "offline", "state.unknown": "unknown",
    "state.ok": "ok", "state.late": "late", "state.failing": "failing",
    "quality.good": "good", "quality.uncertain": "uncertain", "quality.bad": "bad",
    "ago.never": "never", "ago.s": "{n} s ago", "ago.min": "{n} min ago", "ago.h": "{n} h ago", "ago.d": "{n} d ago",
    "alerts.title": "Early warnings", "alerts.none": "No active early warnings.",
    "alerts.counttitle": "{sev} alerts firing, not counting those another covers",
    "alerts.rest": "{pending} pending · {silences} silences",
    "alerts.unavailable": "Early warnings unavailable: {msg}",
    "alerts.station": "Station {id}", "alerts.cloud": "The cloud itself",
    "alert.ack": "ack", "alert.silence": "silence", "alert.acked": "acked by {by}",
    "alert.silenced": "silenced", "alert.muted": "muted", "alert.flapping": "flapping",
    "alert.expected": "{value}, expected to reach {target} in {in} ({trend})",
    "alert.threshold": " — threshold {t}", "alert.cause": "Cause: {c}", "alert.devices": "Devices ({n}): {list}",
    "alert.also": "Also: {x}", "alert.rule": "Rule {rule}", "alert.runbook": "What to do", "alert.covers": "Covers: {x}",
    "alert.bus": "bus {bus}",
    "sev.red": "red", "sev.orange": "orange", "sev.yellow": "yellow", "sev.blue": "blue", "sev.pending": "pending",
    "prompt.who": "Your name, recorded with the action:",
    "prompt.ackcomment": "Acknowledge {name} at {where}: comment",
    "prompt.hours": "Silence this alert for how many hours?",
    "prompt.why": "Why (recorded with the silence)?",
    "prompt.token": "{err}\nYour API token (`fieldwatch-cloud token` makes one):",
    "prompt.tokenneeded": "This needs an API token.",
    "stats.title": "Statistics", "stats.period": "period", "stats.day": "day", "stats.week": "week", "stats.month": "month",
    "stats.export": "CSV", "stats.exporttitle": "download these statistics (CSV)",
    "stats.error": "cannot load the statistics: {msg}", "stats.none": "No readings in these periods.",
    "stats.note": "Periods begin at midnight in {tz}; weeks on Monday. Completeness = received ÷ expected from the device's declared interval; validity = good ÷ received; delay from acquisition to storage; min/mean/max of good values; exceedances = times a rule fired. Click a heading to sort.",
    "stats.weekof": "week of {day}", "stats.min": "{n} min", "stats.h": "{n} h",
    "stats.col.period": "period", "stats.col.device": "device", "stats.col.metric": "metric",
    "stats.col.expected": "expected", "stats.col.received": "received", "stats.col.completeness": "completeness",
    "stats.col.validity": "validity", "stats.col.delay_mean": "mean delay", "stats.col.delay_max": "max delay",
    "stats.col.min": "min", "stats.col.mean": "mean", "stats.col.max": "max",
    "stats.col.exceedances": "exceedances", "stats.col.exceed_s": "exceedance time",
    "chart.title": "Chart", "chart.device": "device", "chart.range": "range", "chart.close": "close chart",
    "chart.metrics": "metrics", "chart.export": "CSV",
    "chart.exporttitle.csv": "download this device's readings in this range (CSV)",
    "chart.exportjsonl": "JSON lines", "chart.exporttitle.jsonl": "download this device's readings in this range (JSON lines, one reading a line)", "chart.pick": "Pick one or more metrics.",
    "chart.time": "Time ({tz})", "chart.nodata": "no values in this range",
    "chart.stats": "{n} buckets of {every}, each the mean of its readings", "chart.error": "cannot load the series: {msg}",
    "range.1h": "1 h", "range.6h": "6 h", "range.24h": "24 h", "range.7d": "7 d", "range.30d": "30 d", "range.1y": "1 y",
    "footer.api": "JSON API at", "footer.kiosk": "wall screen", "footer.refresh": "values refresh every 5 s",
    "kiosk.exit": "full console",
  },
  zh: {
    "app.title": "Fieldwatch 现场监测",
    "lang.switch": "语言",
    loading: "加载中…",
    updated: "更新于 {time}",
    "summary": "站点在线 {online}/{stations} · 设备上报 {healthy}/{devices}",
    "summary.attention": " · {n} 台需关注",
    "error.cloud": "无法连接 Fieldwatch 云端：{msg}",
    "error.action": "预警操作失败：{msg}",
    "map.title": "站点地图",
    "nav.map": "站点地图", "nav.inventory": "设备清单", "nav.views": "视图",
    "inv.title": "设备清单", "inv.labels": "标签", "inv.export": "导出 CSV",
    "inv.exporttitle": "下载此清单（CSV，UTF-8，Excel 可直接打开）", "inv.addlabel": "按此标签筛选",
    "inv.error": "无法加载设备清单：{msg}", "inv.none": "没有符合条件的网关。", "inv.count": "共 {n} 台网关",
    "inv.filter.all": "全部", "inv.filter.online": "在线", "inv.filter.offline": "离线",
    "inv.state.online": "在线", "inv.state.stale": "无响应", "inv.state.offline": "离线", "inv.state.unknown": "未知",
    "inv.col.state": "状态", "inv.col.id": "网关", "inv.col.site": "站点", "inv.col.labels": "标签",
    "inv.col.version": "版本", "inv.col.arch": "架构", "inv.col.config": "配置版本", "inv.col.uptime": "运行时长",
    "inv.col.last_seen": "最后通信", "inv.col.backlog": "积压", "inv.col.disk": "缓存占用", "inv.col.clock": "时钟",
    "inv.col.devices": "设备数", "inv.col.faulty": "故障设备",
    "inv.config.local": "本地文件", "inv.update": "待升级版本：{u}", "inv.min": "{n} 分钟", "inv.h": "{n} 小时", "inv.d": "{n} 天",
    "inv.clock.ntp": "NTP", "inv.clock.gps": "GPS", "inv.clock.rtc": "RTC", "inv.clock.unsynced": "未校时",
    "inv.maxerror": "最大误差 {ms} 毫秒",
    "map.legend.fine": "正常", "map.legend.offline": "离线",
    "map.basemap": "海岸线：Natural Earth 1:50m（离线底图）",
    "map.nolocation": "{n} 个站点未配置位置，未显示在地图上。",
    "map.cluster": "{n} 个站点：{ids}（点击放大）",
    "map.track": "浮标轨迹：",
    "stations.none": "暂无站点。请启动网关，或运行 `make demo`。",
    "stations.pick": "站点",
    "station.site": "场地 {site}",
    "station.heard": "最近通信 {ago}",
    "station.backlog": "网关积压 {n} 条读数",
    "station.version": "版本 {v}",
    "th.device": "设备", "th.state": "状态", "th.latest": "最新值",
    "device.at": "位置 {lat}, {lon}",
    "device.events": "{n} 个事件",
    "metric.title": "{metric}，{time}（{quality}）— 点击查看曲线",
    "events.title": "最近事件", "th.event": "事件", "th.when": "时间", "th.details": "详情",
    "event.tag": "耳标 {key}", "event.reads": "读取 {n} 次", "event.adrift": "走锚漂移", "event.returned": "已回到锚位",
    "event.frommooring": "距锚位 {m} 米", "event.radius": "半径 {m} 米",
    "history.title": "预警历史", "history.none": "最近 7 天无预警记录。",
    "history.backlog": "来自积压数据",
    "history.th.alert": "预警", "history.th.value": "数值", "history.th.threshold": "阈值", "history.th.rule": "规则",
    "history.pending": "待确认", "history.resolved": "已解除", "history.inactive": "已结束",
    "state.online": "在线", "state.offline": "离线", "state.unknown": "未知",
    "state.ok": "正常", "state.late": "迟报", "state.failing": "故障",
    "quality.good": "良好", "quality.uncertain": "存疑", "quality.bad": "无效",
    "ago.never": "从未", "ago.s": "{n} 秒前", "ago.min": "{n} 分钟前", "ago.h": "{n} 小时前", "ago.d": "{n} 天前",
    "alerts.title": "预警信息", "alerts.none": "当前没有生效的预警。",
    "alerts.counttitle": "{sev}预警（不计被其他预警覆盖的）",
    "alerts.rest": "待触发 {pending} · 静默 {silences}",
    "alerts.unavailable": "预警信息不可用：{msg}",
    "alerts.station": "站点 {id}", "alerts.cloud": "云端自身",
    "alert.ack": "确认", "alert.silence": "静默", "alert.acked": "已由 {by} 确认",
    "alert.silenced": "已静默", "alert.muted": "已抑制", "alert.flapping": "频繁变化",
    "alert.expected": "当前 {value}，预计 {in} 后达到 {target}（{trend}）",
    "alert.threshold": " — 阈值 {t}", "alert.cause": "原因：{c}", "alert.devices": "涉及设备（{n}）：{list}",
    "alert.also": "同时：{x}", "alert.rule": "规则 {rule}", "alert.runbook": "处置建议", "alert.covers": "覆盖：{x}",
    "alert.bus": "总线 {bus}",
    "sev.red": "红色", "sev.orange": "橙色", "sev.yellow": "黄色", "sev.blue": "蓝色", "sev.pending": "待触发",
    "prompt.who": "请输入姓名（随操作记录）：",
    "prompt.ackcomment": "确认 {where} 的 {name}：备注",
    "prompt.hours": "静默此预警多少小时？",
    "prompt.why": "静默原因（将被记录）：",
    "prompt.token": "{err}\n请输入 API 令牌（可用 `fieldwatch-cloud token` 生成）：",
    "prompt.tokenneeded": "此操作需要 API 令牌。",
    "stats.title": "统计", "stats.period": "统计周期", "stats.day": "日", "stats.week": "周", "stats.month": "月",
    "stats.export": "导出 CSV", "stats.exporttitle": "下载这些统计（CSV）",
    "stats.error": "无法加载统计：{msg}", "stats.none": "这些周期内没有读数。",
    "stats.note": "周期从 {tz} 的零点开始，周从星期一开始。数据完整率 = 实收 ÷ 按设备申报采集间隔应收；数据有效率 = 有效 ÷ 实收；传输时效 = 采集到入库的延迟；最小/平均/最大值只计有效数据；超标 = 规则告警的次数与时长。点击列标题排序。",
    "stats.weekof": "{day} 起一周", "stats.min": "{n} 分钟", "stats.h": "{n} 小时",
    "stats.col.period": "周期", "stats.col.device": "设备", "stats.col.metric": "指标",
    "stats.col.expected": "应收", "stats.col.received": "实收", "stats.col.completeness": "完整率",
    "stats.col.validity": "有效率", "stats.col.delay_mean": "平均延迟", "stats.col.delay_max": "最大延迟",
    "stats.col.min": "最小值", "stats.col.mean": "平均值", "stats.col.max": "最大值",
    "stats.col.exceedances": "超标次数", "stats.col.exceed_s": "超标时长",
    "chart.title": "曲线", "chart.device": "设备", "chart.range": "时间范围", "chart.close": "关闭曲线",
    "chart.metrics": "指标", "chart.export": "导出 CSV",
    "chart.exporttitle.csv": "下载该设备在此时间范围内的读数（CSV）",
    "chart.exportjsonl": "导出 JSON 行", "chart.exporttitle.jsonl": "下载该设备在此时间范围内的读数（JSON 行格式，每行一条读数）", "chart.pick": "请选择一个或多个指标。",
    "chart.time": "时间（{tz}）", "chart.nodata": "该时间范围内无数据",
    "chart.stats": "{n} 个时间段，每段 {every}，取段内读数平均值", "chart.error": "无法加载数据：{msg}",
    "range.1h": "1 小时", "range.6h": "6 小时", "range.24h": "24 小时", "range.7d": "7 天", "range.30d": "30 天", "range.1y": "1 年",
    "footer.api": "JSON 接口", "footer.kiosk": "大屏模式", "footer.refresh": "数据每 5 秒刷新",
    "kiosk.exit": "完整控制台",
  },
};

// Metric names: the telemetry vocabulary of the firmware profiles, the NMEA
// and NDBC drivers and the rule packs. An unknown metric shows its own name.
const metrics = {
  soil_moisture: ["soil moisture", "土壤含水率"],
  soil_temperature: ["soil temperature", "土壤温度"],
  soil_ec: ["soil EC", "土壤电导率"],
  soil_ph: ["soil pH", "土壤 pH"],
  soil_nitrogen: ["soil nitrogen", "土壤氮"],
  soil_phosphorus: ["soil phosphorus", "土壤磷"],
  soil_potassium: ["soil potassium", "土壤钾"],
  air_temperature: ["air temperature", "气温"],
  air_humidity: ["air humidity", "空气湿度"],
  air_pressure: ["air pressure", "气压"],
  dew_point: ["dew point", "露点"],
  rainfall: ["rainfall", "降雨量"],
  rainfall_2: ["rainfall (2)", "降雨量（2）"],
  rainfall_3: ["rainfall (3)", "降雨量（3）"],
  illuminance: ["illuminance", "光照度"],
  solar_radiation: ["solar radiation", "太阳辐射"],
  solar_radiation_total: ["total solar radiation", "总辐射"],
  noise: ["noise", "噪声"],
  pm2_5: ["PM2.5", "PM2.5"],
  pm10: ["PM10", "PM10"],
  co2: ["CO₂", "二氧化碳"],
  wind_speed: ["wind speed", "风速"],
  wind_direction: ["wind direction", "风向"],
  wind_direction_sector: ["wind direction sector", "风向方位"],
  wind_force: ["wind force (Beaufort)", "风力等级"],
  wind_gust: ["wind gust", "阵风"],
  wind_speed_relative: ["relative wind speed", "相对风速"],
  wind_direction_relative: ["relative wind direction", "相对风向"],
  water_temperature: ["water temperature", "水温"],
  water_ph: ["water pH", "水体 pH"],
  water_depth: ["water depth", "水深"],
  water_speed: ["speed through water", "对水航速"],
  dissolved_oxygen: ["dissolved oxygen", "溶解氧"],
  do_saturation: ["DO saturation", "溶解氧饱和度"],
  turbidity: ["turbidity", "浊度"],
  ammonia_nitrogen: ["ammonia nitrogen", "氨氮"],
  potassium_ion: ["potassium ion", "钾离子"],
  wave_height: ["significant wave height", "有效波高"],
  wave_height_max: ["maximum wave height", "最大波高"],
  wave_period: ["mean wave period", "平均波周期"],
  wave_period_peak: ["peak wave period", "谱峰周期"],
  wave_direction: ["wave direction", "波向"],
  heading: ["heading", "艏向"],
  latitude: ["latitude", "纬度"],
  longitude: ["longitude", "经度"],
  gps_quality: ["GPS fix quality", "GPS 定位质量"],
  gps_satellites: ["GPS satellites", "GPS 卫星数"],
  speed_over_ground: ["speed over ground", "对地航速"],
  course_over_ground: ["course over ground", "对地航向"],
  clock_offset: ["clock offset", "时钟偏差"],
  battery: ["battery", "电池电压"],
  rssi: ["RSSI", "信号强度"],
  snr: ["SNR", "信噪比"],
  value: ["value", "数值"],
};

// Unit names where Chinese usage differs from the symbol; symbols (°C, %,
// m/s, hPa, mg/L, µS/cm …) are the same in both languages.
const units = {
  zh: { s: "秒", m: "米", mm: "毫米", "°": "°" },
};

const listeners = [];

function pickInitial() {
  const saved = localStorage.getItem(langKey);
  if (saved === "zh" || saved === "en") return saved;
  for (const l of navigator.languages || [navigator.language || ""]) {
    const x = l.toLowerCase();
    if (x.startsWith("zh")) return "zh";
    if (x.startsWith("en")) return "en";
  }
  return "zh"; // the bureaus' language when the browser names neither
}

export let lang = pickInitial();

// t looks key up in the current language (English if missing) and fills
// {name} from vars.
export function t(key, vars = {}) {
  const s = dict[lang][key] ?? dict.en[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (m, k) => (vars[k] ?? m));
}

export function metricName(m) {
  const n = metrics[m];
  return n ? n[lang === "zh" ? 1 : 0] : m.replace(/_/g, " ");
}

export function unitName(u) {
  if (!u) return "";
  return (units[lang] && units[lang][u]) || u;
}

// pick returns the annotation in the current language: ann[key + "_cn"]
// in Chinese when there is one, else ann[key].
export function pick(ann, key) {
  if (!ann) return "";
  if (lang === "zh" && ann[key + "_cn"]) return ann[key + "_cn"];
  return ann[key] || "";
}

export function locale() {
  return lang === "zh" ? "zh-CN" : "en";
}

export function setLang(l) {
  lang = l;
  localStorage.setItem(langKey, l);
  apply();
  for (const f of listeners) f(l);
}

export function onLang(f) {
  listeners.push(f);
}

// apply sets <html lang>, the title and every element marked data-i18n
// (its text) or data-i18n-aria (its aria-label), and the switch's state.
export function apply() {
  document.documentElement.lang = locale();
  document.title = t("app.title");
  for (const e of document.querySelectorAll("[data-i18n]")) e.textContent = t(e.dataset.i18n);
  for (const e of document.querySelectorAll("[data-i18n-aria]")) e.setAttribute("aria-label", t(e.dataset.i18nAria));
  for (const b of document.querySelectorAll("[data-lang]")) b.setAttribute("aria-pressed", String(b.dataset.lang === lang));
}
