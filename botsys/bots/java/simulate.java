// simulate: the seed's simulated Java workload.
//
// Payload (all optional): {"durationMs": 3000..7000 random by default, "failureRate": 0.05}.
//
// Fails (exit 1) with probability failureRate before doing anything, as the seed did; otherwise
// sleeps durationMs, reporting progress 25/50/75/100, and returns a result.
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;

public class simulate {
    public static void main(String[] args) throws Exception {
        String input = new String(System.in.readAllBytes(), StandardCharsets.UTF_8);
        Map<?, ?> envelope = (Map<?, ?>) Json.parse(input);
        Object p = envelope.get("payload");
        Map<?, ?> payload = p instanceof Map ? (Map<?, ?>) p : Map.of();
        ThreadLocalRandom random = ThreadLocalRandom.current();
        double durationMs = number(payload, "durationMs", 3000 + random.nextDouble() * 4000, 3_600_000);
        double failureRate = number(payload, "failureRate", 0.05, 1);
        long started = System.nanoTime();
        emit(Map.of("log", String.format("java simulate: %.0f ms, failure rate %s", durationMs, failureRate)));
        if (random.nextDouble() < failureRate) {
            System.err.println("Simulated java bot execution error");
            System.exit(1);
        }
        for (int percent : new int[] {25, 50, 75, 100}) {
            Thread.sleep((long) (durationMs / 4));
            emit(Map.of("progress", percent));
        }
        Map<String, Object> result = new LinkedHashMap<>();
        result.put("botType", envelope.get("botType"));
        result.put("bot", "simulate");
        result.put("processed", true);
        result.put("language", "Java");
        result.put("version", System.getProperty("java.version"));
        result.put("input", payload);
        result.put("attempt", envelope.get("attempt"));
        result.put("executionTimeMs", (System.nanoTime() - started) / 1e6);
        result.put("processedAt", Instant.now().toString());
        emit(Map.of("result", result));
    }

    static double number(Map<?, ?> payload, String key, double fallback, double hi) {
        Object value = payload.containsKey(key) ? payload.get(key) : fallback;
        if (!(value instanceof Number) || ((Number) value).doubleValue() < 0 || ((Number) value).doubleValue() > hi) {
            System.err.println("payload." + key + " must be a number between 0 and " + hi);
            System.exit(2);
        }
        return ((Number) value).doubleValue();
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
