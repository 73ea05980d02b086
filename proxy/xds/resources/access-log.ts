// HCM access_log: Envoy's file logger (FileAccessLog: path plus log_format) and the stdout /
// stderr stream loggers. log_format is a SubstitutionFormatString: json_format (a Struct of
// command operator strings), text_format_source.inline_string or the legacy text_format.
// Without a format Envoy uses its default text line; so does this proxy.
import { TYPE_URL } from '../../../api/xds/protos.js';
import type { AccessLogger } from '../../stats/access-log.js';
import { formatAccessLog } from '../../stats/access-log.js';
import { jsonFormatter, textFormatter, type LogFormatter } from '../../stats/log-format.js';
import { arr, obj, str, type FieldErrors, type Obj } from './fields.js';

const DEFAULT_FORMATTER: LogFormatter = { render: (e) => formatAccessLog(e) };

function typeOf(o: Obj | undefined): string | undefined {
  return o ? str(o['@type']) : undefined;
}

function formatter(lf: Obj | undefined, field: string, errors: FieldErrors): { formatter: LogFormatter; newline: boolean } {
  if (!lf) return { formatter: DEFAULT_FORMATTER, newline: true };
  const problems: string[] = [];
  let out: { formatter: LogFormatter; newline: boolean } = { formatter: DEFAULT_FORMATTER, newline: true };
  const json = obj(lf.jsonFormat);
  const textSource = obj(lf.textFormatSource);
  if (json) out = { formatter: jsonFormatter(json, `${field}.jsonFormat`, problems), newline: true };
  else if (textSource) {
    const inline = str(textSource.inlineString);
    if (inline === undefined) errors.add(`${field}.textFormatSource`, 'only inlineString is supported');
    else out = { formatter: textFormatter(inline, `${field}.textFormatSource.inlineString`, problems), newline: false };
  } else if (str(lf.textFormat) !== undefined) {
    out = { formatter: textFormatter(str(lf.textFormat) ?? '', `${field}.textFormat`, problems), newline: false };
  }
  for (const p of problems) {
    const at = p.indexOf(': ');
    errors.add(p.slice(0, at), p.slice(at + 2));
  }
  return out;
}

export function decodeAccessLogs(raw: unknown, field: string, errors: FieldErrors): AccessLogger[] {
  const out: AccessLogger[] = [];
  arr(raw).forEach((a, i) => {
    const f = `${field}[${i}]`;
    const al = obj(a) ?? {};
    const tc = obj(al.typedConfig);
    const type = typeOf(tc);
    if (al.filter !== undefined) errors.add(`${f}.filter`, 'access log filters are not supported');
    if (type === TYPE_URL.fileAccessLog) {
      const path = str(tc?.path);
      if (!path) { errors.add(`${f}.typedConfig.path`, 'required'); return; }
      if (tc?.format !== undefined || tc?.jsonFormat !== undefined) errors.add(`${f}.typedConfig`, 'use logFormat (format/jsonFormat are deprecated)');
      out.push({ path, ...formatter(obj(tc?.logFormat), `${f}.typedConfig.logFormat`, errors) });
    } else if (type === TYPE_URL.stdoutAccessLog || type === TYPE_URL.stderrAccessLog) {
      const path = type === TYPE_URL.stdoutAccessLog ? '/dev/stdout' : '/dev/stderr';
      out.push({ path, ...formatter(obj(tc?.logFormat), `${f}.typedConfig.logFormat`, errors) });
    } else {
      errors.add(`${f}.typedConfig`, `access logger ${type ?? str(al.name) ?? '(none)'} is not supported (file, stdout, stderr)`);
    }
  });
  return out;
}
