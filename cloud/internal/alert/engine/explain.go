package engine

import (
	"cmp"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/fieldwatch/fieldwatch/cloud/internal/alert"
	"github.com/fieldwatch/fieldwatch/cloud/internal/alert/rules"
)

// Every alert explains itself, on the page, in the API and in every
// notification: the value with its unit, the threshold it crossed, the
// rule and the standard it cites, the cause (for absence: which gateway,
// bus or device, and why), the devices a cause covers, and what to do (the
// rule's runbook), in English and Chinese, plus one-line descriptions
// short enough for a pager or an SMS gateway.

// builtinNotes are the built-in alerts' texts.
var builtinNotes = map[string]map[string]string{
	"gateway_offline": {
		"summary":    "Gateway offline or not responding",
		"summary_cn": "网关离线或无响应",
		"runbook": "Check the gateway's power and its link (modem lights, SIM credit, antenna, the site's network). " +
			"If you can reach it: `fieldwatch-gateway status` and `journalctl -u fieldwatch-gateway`. Its readings wait in its " +
			"buffer and arrive when it is back; its devices' silence is part of this alert.",
		"runbook_cn": "检查网关供电和通信链路（模块指示灯、SIM 卡余额、天线、现场网络）。能登录时运行 fieldwatch-gateway status 并查看日志。" +
			"数据保存在网关缓存中，恢复后自动补传；其设备无数据已包含在本告警中。",
	},
	"bus_down": {
		"summary":    "Every device on a bus is silent",
		"summary_cn": "总线上全部设备无数据",
		"runbook": "Check this bus's RS485 cable, connectors and termination, the USB-RS485 adapter or serial server and " +
			"its power. `fieldwatch-gateway status` shows each device's last error (timeout on all: the line; CRC errors: " +
			"wiring or baud rate).",
		"runbook_cn": "检查该总线的 RS485 线缆、接头和终端电阻，以及 USB 转 RS485 转换器或串口服务器及其供电。" +
			"fieldwatch-gateway status 显示每台设备最近的错误（全部超时：线路问题；CRC 错误：接线或波特率）。",
	},
	"device_silent": {
		"summary":    "Device silent",
		"summary_cn": "设备无数据",
		"runbook": "Check the device's power, wiring and address. `fieldwatch-gateway status` on its gateway shows its last " +
			"error; with the gateway stopped, `fieldwatch-gateway read` talks to it directly.",
		"runbook_cn": "检查设备供电、接线和地址。在网关上运行 fieldwatch-gateway status 查看最近错误；" +
			"停止网关服务后可用 fieldwatch-gateway read 直接读取设备。",
	},
	"cloud_intake": {
		"summary":    "The cloud cannot hear the field",
		"summary_cn": "云端收不到现场数据",
		"runbook": "Check the MQTT broker and the store (InfluxDB or the data disk) and the cloud's log. Gateways keep " +
			"their readings and send them again; no device is judged silent meanwhile.",
		"runbook_cn": "检查 MQTT 消息服务器、数据存储（InfluxDB 或数据盘）和云端日志。网关会保留并补传数据；" +
			"在此期间不判定设备无数据。",
	},
}

// annotations explain s at severity sev.
func (e *Engine) annotations(s *series, sev alert.Severity) map[string]string {
	c := s.rule
	notes := c // whose texts apply: a tuning's over the built-in it tunes
	if s.tuned != nil {
		notes = s.tuned
	}
	out := map[string]string{}
	labels := e.labels(s, sev)
	for _, r := range []*crule{c, notes} {
		for k, v := range r.Annotations {
			out[k] = render(r.texts[k], v, labels, s.A.Value)
		}
		if notes == c {
			break
		}
	}
	out["standard"] = notes.Standard
	if notes.StandardCN != "" {
		out["standard_cn"] = notes.StandardCN
	}
	out["severity_cn"] = sev.Chinese()
	// What people call the station and its site (the gateway's config):
	// the Chinese message names them, a receiver may show them.
	if e.o.Registry != nil {
		if name, site := e.o.Registry.Names(s.A.Labels["gateway_id"]); name != "" || site != "" {
			if name != "" {
				out["station_name"] = name
			}
			if site != "" {
				out["site_name"] = site
			}
		}
	}
	if out["summary"] == "" {
		out["summary"] = c.Name
		if out["summary"] == "" {
			out["summary"] = c.ID
		}
	}
	measured := c.Kind != rules.NoData && !(c.Kind == rules.Event && c.Event.Absent > 0)
	if (c.Kind == rules.Event && c.Event.Value == "") || c.Kind == rules.Forecast {
		measured = false // an event without a number says what happened; a forecast says it below
	}
	if measured {
		out["value"] = formatValue(s.A.Value)
		if s.Unit != "" {
			out["unit"] = s.Unit
		}
		out["value_text"] = withUnit(s.A.Value, s.Unit)
		for _, l := range s.Levels {
			if l.Severity == sev && l.Set != nil {
				out["threshold"] = l.Op + " " + withUnit(*l.Set, s.Unit)
				if l.Class != "" {
					out["threshold"] = "class " + l.Class + " or worse"
				}
			}
		}
	}
	if c.Kind == rules.Event {
		out["event"] = c.Event.Kind
		if s.EvKey != "" {
			out["event_key"] = s.EvKey
		}
	}
	if c.Kind == rules.Forecast {
		e.forecastNotes(s, sev, out)
	}
	out["threshold_source"] = s.Source
	if c.table != nil {
		idx := int(s.A.Value)
		if idx >= 0 && idx < len(c.table.Classes) {
			out["class"] = c.table.Classes[idx]
		}
	}
	if s.why != "" {
		out["cause"], out["cause_cn"] = s.why, s.whyCN
	}
	if len(s.members) > 0 {
		m := append([]string(nil), s.members...)
		sort.Strings(m)
		out["devices"] = strings.Join(m, ", ")
		out["device_count"] = strconv.Itoa(len(m))
	}
	if also := e.outranking(s); len(also) > 0 {
		sort.Strings(also)
		out["also"] = strings.Join(also, ", ")
	}
	if link := e.linkFor(s.A.Fingerprint); link != "" {
		out["dashboard_url"] = link
	}
	out["description"], out["description_cn"] = describe(s, sev, out)
	return out
}

// describe writes the one-line explanations.
func describe(s *series, sev alert.Severity, a map[string]string) (en, cn string) {
	place := s.A.Labels["site"]
	for _, k := range []string{"device", "bus"} {
		if v := s.A.Labels[k]; v != "" {
			place = strings.TrimPrefix(place+"/"+v, "/")
		}
	}
	if place == "" {
		place = s.A.Labels["gateway_id"]
	}
	// In Chinese the station by its display name, else its site's, else
	// the ids.
	placeCN := place
	if n := cmp.Or(a["station_name"], a["site_name"]); n != "" {
		placeCN = n
		for _, k := range []string{"device", "bus"} {
			if v := s.A.Labels[k]; v != "" {
				placeCN += "/" + v
			}
		}
	}
	var b, z strings.Builder
	fmt.Fprintf(&b, "%s: %s", strings.ToUpper(sev.String()), a["summary"])
	z.WriteString(sev.Chinese() + "：")
	if a["summary_cn"] != "" {
		z.WriteString(a["summary_cn"])
	} else {
		z.WriteString(a["summary"])
	}
	if place != "" {
		fmt.Fprintf(&b, " at %s", place)
		fmt.Fprintf(&z, "（%s）", placeCN)
	}
	switch {
	case a["expected_in"] != "":
		fmt.Fprintf(&b, ": %s now, expected to reach %s in %s", a["value_text"], a["target"], a["expected_in"])
		fmt.Fprintf(&z, "：当前 %s，预计 %s 后达到 %s", a["value_text"], a["expected_in_cn"], a["target"])
	case a["value_text"] != "" && a["threshold"] != "":
		fmt.Fprintf(&b, ": %s (threshold %s)", a["value_text"], a["threshold"])
		fmt.Fprintf(&z, "：%s（阈值 %s）", a["value_text"], a["threshold"])
	case a["value_text"] != "":
		fmt.Fprintf(&b, ": %s", a["value_text"])
		fmt.Fprintf(&z, "：%s", a["value_text"])
	}
	fmt.Fprintf(&b, ". Rule %s, %s.", s.rule.ID, a["standard"])
	fmt.Fprintf(&z, "。规则 %s，依据 %s。", s.rule.ID, cmp.Or(a["standard_cn"], a["standard"]))
	if a["cause"] != "" {
		fmt.Fprintf(&b, " Cause: %s.", a["cause"])
		fmt.Fprintf(&z, "原因：%s。", a["cause_cn"])
	}
	if a["devices"] != "" {
		fmt.Fprintf(&b, " Devices (%s): %s.", a["device_count"], a["devices"])
		fmt.Fprintf(&z, "涉及设备（%s 台）：%s。", a["device_count"], a["devices"])
	}
	if a["runbook"] != "" {
		fmt.Fprintf(&b, " What to do: %s", a["runbook"])
	}
	if a["runbook_cn"] != "" {
		fmt.Fprintf(&z, "处置：%s", a["runbook_cn"])
	}
	return b.String(), z.String()
}

// render executes an annotation template (nil: the text as it is); a
// template that fails leaves the text as written.
func render(t *template.Template, text string, labels map[string]string, v float64) string {
	if t == nil {
		return text
	}
	var b strings.Builder
	if err := t.Execute(&b, struct {
		Labels map[string]string
		Value  templateValue
	}{labels, templateValue(v)}); err != nil {
		return text
	}
	return b.String()
}

// templateValue is $value in an annotation: a number ({{ printf "%.1f"
// $value }}) that prints in six significant digits as it is ({{ $value }}).
type templateValue float64

func (v templateValue) String() string { return formatValue(float64(v)) }

// withUnit is a value with its unit, for people.
func withUnit(v float64, unit string) string {
	if unit == "" {
		return formatValue(v)
	}
	return formatValue(v) + " " + unit
}
