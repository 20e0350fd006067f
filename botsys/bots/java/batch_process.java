// batch_process: process a batch of records, reporting progress as it goes.
//
// Payload:
//   records    N (a number: N synthetic records {"id": i, "value": (i * 7919) % 1000})
//              or an array of objects (your records)                                  (required)
//   batchSize  records per batch, default 100; a progress event follows every batch
//   delayMs    pause after each batch (simulates I/O), default 0
// Result: {"processed": count, "batches": n, "totals": {field: sum of its numeric values},
//          "checksum": CRC-32 of the records' canonical JSON, "executionTimeMs": ...}
// Bad input exits 2 with the reason on stderr.
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.zip.CRC32;

public class batch_process {
    public static void main(String[] args) throws Exception {
        String input = new String(System.in.readAllBytes(), StandardCharsets.UTF_8);
        Object p = ((Map<?, ?>) Json.parse(input)).get("payload");
        if (!(p instanceof Map<?, ?> payload)) { fail("payload must be an object with \"records\""); return; }
        List<Object> records = records(payload.get("records"));
        int batchSize = (int) Math.max(1, number(payload.get("batchSize"), 100));
        long delayMs = (long) Math.max(0, number(payload.get("delayMs"), 0));
        long started = System.nanoTime();
        Map<String, Double> totals = new TreeMap<>();
        CRC32 crc = new CRC32();
        int batches = 0;
        for (int from = 0; from < records.size(); from += batchSize) {
            int to = Math.min(records.size(), from + batchSize);
            for (Object record : records.subList(from, to)) process(record, totals, crc);
            batches++;
            emit(Map.of("progress", (int) (100L * to / records.size())));
            if (delayMs > 0) Thread.sleep(delayMs);
        }
        Map<String, Object> result = new LinkedHashMap<>();
        result.put("processed", records.size());
        result.put("batches", batches);
        result.put("totals", totals);
        result.put("checksum", String.format("%08x", crc.getValue()));
        result.put("executionTimeMs", (System.nanoTime() - started) / 1e6);
        emit(Map.of("result", result));
    }

    static List<Object> records(Object spec) {
        if (spec instanceof List<?> list) return new ArrayList<>(list);
        if (!(spec instanceof Number n) || n.longValue() < 0 || n.longValue() > 10_000_000) {
            fail("payload.records must be a count (0..10000000) or an array of objects");
        }
        List<Object> out = new ArrayList<>();
        for (long i = 0; i < ((Number) spec).longValue(); i++) {
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("id", i);
            r.put("value", (i * 7919) % 1000);
            out.add(r);
        }
        return out;
    }

    static void process(Object record, Map<String, Double> totals, CRC32 crc) {
        if (!(record instanceof Map<?, ?> map)) { fail("each record must be an object"); return; }
        for (Map.Entry<?, ?> e : map.entrySet()) {
            if (e.getValue() instanceof Number n) totals.merge(String.valueOf(e.getKey()), n.doubleValue(), Double::sum);
        }
        crc.update(Json.write(record).getBytes(StandardCharsets.UTF_8));
    }

    static double number(Object value, double fallback) {
        if (value == null) return fallback;
        if (!(value instanceof Number n)) { fail("batchSize and delayMs must be numbers"); return 0; }
        return n.doubleValue();
    }

    static void fail(String message) {
        System.err.println(message);
        System.exit(2);
    }

    static void emit(Object event) {
        System.out.println(Json.write(event));
    }

    /** A small JSON reader/writer (the JDK has none): objects → LinkedHashMap, arrays → List. */
    static final class Json {
        private final String s;
        private int i;

        private Json(String s) { this.s = s; }

        static Object parse(String text) {
            Json p = new Json(text);
            Object value = p.value();
            p.ws();
            if (p.i != p.s.length()) throw p.error("trailing data");
            return value;
        }

        private Object value() {
            ws();
            if (i >= s.length()) throw error("unexpected end");
            char c = s.charAt(i);
            if (c == '{') return object();
            if (c == '[') return array();
            if (c == '"') return string();
            if (s.startsWith("true", i)) { i += 4; return Boolean.TRUE; }
            if (s.startsWith("false", i)) { i += 5; return Boolean.FALSE; }
            if (s.startsWith("null", i)) { i += 4; return null; }
            return number();
        }

        private Map<String, Object> object() {
            Map<String, Object> map = new LinkedHashMap<>();
            i++;
            ws();
            if (peek('}')) return map;
            do {
                ws();
                String key = string();
                ws();
                expect(':');
                map.put(key, value());
                ws();
            } while (next(','));
            expect('}');
            return map;
        }

        private List<Object> array() {
            List<Object> list = new java.util.ArrayList<>();
            i++;
            ws();
            if (peek(']')) return list;
            do { list.add(value()); ws(); } while (next(','));
            expect(']');
            return list;
        }

        private String string() {
            expect('"');
            StringBuilder b = new StringBuilder();
            while (i < s.length() && s.charAt(i) != '"') {
                char c = s.charAt(i++);
                if (c != '\\') { b.append(c); continue; }
                char e = s.charAt(i++);
                switch (e) {
                    case 'n' -> b.append('\n');
                    case 't' -> b.append('\t');
                    case 'r' -> b.append('\r');
                    case 'b' -> b.append('\b');
                    case 'f' -> b.append('\f');
                    case 'u' -> { b.append((char) Integer.parseInt(s.substring(i, i + 4), 16)); i += 4; }
                    default -> b.append(e);
                }
            }
            expect('"');
            return b.toString();
        }

        private Number number() {
            int start = i;
            while (i < s.length() && "+-0123456789.eE".indexOf(s.charAt(i)) >= 0) i++;
            String t = s.substring(start, i);
            if (t.isEmpty()) throw error("unexpected character");
            if (t.matches("-?\\d{1,18}")) return Long.parseLong(t);
            return Double.parseDouble(t);
        }

        private void ws() { while (i < s.length() && Character.isWhitespace(s.charAt(i))) i++; }
        private boolean peek(char c) { if (i < s.length() && s.charAt(i) == c) { i++; return true; } return false; }
        private boolean next(char c) { ws(); return peek(c); }
        private void expect(char c) { if (!peek(c)) throw error("expected '" + c + "'"); }
        private RuntimeException error(String what) { return new IllegalArgumentException("bad JSON at " + i + ": " + what); }

        static String write(Object v) {
            if (v == null) return "null";
            if (v instanceof String str) return quote(str);
            if (v instanceof Number || v instanceof Boolean) return String.valueOf(v);
            StringBuilder b = new StringBuilder();
            if (v instanceof Map<?, ?> map) {
                b.append('{');
                for (Map.Entry<?, ?> e : map.entrySet()) {
                    if (b.length() > 1) b.append(',');
                    b.append(quote(String.valueOf(e.getKey()))).append(':').append(write(e.getValue()));
                }
                return b.append('}').toString();
            }
            if (v instanceof List<?> list) {
                b.append('[');
                for (Object item : list) { if (b.length() > 1) b.append(','); b.append(write(item)); }
                return b.append(']').toString();
            }
            return quote(String.valueOf(v));
        }

        static String quote(String str) {
            StringBuilder b = new StringBuilder("\"");
            for (char c : str.toCharArray()) {
                if (c == '"' || c == '\\') b.append('\\').append(c);
                else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
                else b.append(c);
            }
            return b.append('"').toString();
        }
    }
}
