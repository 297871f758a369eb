// Package ndbc decodes NOAA National Data Buoy Center "realtime2" standard
// meteorological text files (data/realtime2/<STATION>.txt) into telemetry
// readings, implementing stream.Decoder.
//
// A file has two header lines, column names then units:
//
//	#YY  MM DD hh mm WDIR WSPD GST  WVHT   DPD   APD MWD   PRES  ATMP  WTMP  DEWP  VIS PTDY  TIDE
//	#yr  mo dy hr mn degT m/s  m/s     m   sec   sec degT   hPa  degC  degC  degC  nmi  hPa    ft
//
// then one row per observation, newest first, covering the last 45 days;
// "MM" marks a missing value and gives no reading.
//
// The gateway polls the file (every 10 minutes, say) and feeds each whole
// document, in one or many chunks. A document begins at its "#YY" header
// line, and columns are assigned by the names in it: a header with an
// unknown or repeated name, without the five time columns, or whose units
// line disagrees, refuses the whole document (counted as "header") rather
// than misassign a column. Rows arriving without a header are counted once
// per document as "no_header".
//
// Only rows newer than the newest row of the previous documents are
// emitted, so a poll that re-reads 45 days emits just the new rows. The
// watermark moves when the next document begins (its header line) or on
// Start, not during a document, because rows come newest first. Bad rows —
// wrong column count ("columns"), a value that is not "MM" nor a plain
// decimal number ("number"), an impossible date or one more than a day
// ahead of the arrival time ("date") — are counted and skipped whole. A
// line longer than 1024 bytes is "overlong"; a line cut by Start is "cut".
// Stats.Frames counts the rows emitted; rows already emitted by an earlier
// poll, or older than Config.Backfill, are skipped without a count.
//
// Each reading's Time is the row's UTC timestamp; its Clock is
// telemetry.ClockUnknown, since the time is NOAA's, not the gateway's.
// Units are those of the file, except TIDE, converted from feet to metres;
// VIS stays in nautical miles ("nmi"), as NDBC publishes it (older files
// in statute miles, "mi", are converted to nmi). A value outside the
// plausible range of its metric is kept with quality Bad.
package ndbc
