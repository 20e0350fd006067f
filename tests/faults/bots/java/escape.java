// Containment probe (see ../python/escape.py): a setsid grandchild and a double-forked daemon.
import java.nio.charset.StandardCharsets;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

public class escape {
    static final String ESCAPE = "setsid sleep \"$1\" & (sleep \"$1\" &); "
            + "until [ \"$(pgrep -cxf \"sleep $1\")\" -ge 2 ]; do sleep 0.01; done";

    static String field(String json, String name, String otherwise) {
        Matcher m = Pattern.compile("\"" + name + "\"\\s*:\\s*\"?([0-9.]+)").matcher(json);
        return m.find() ? m.group(1) : otherwise;
    }

    public static void main(String[] args) throws Exception {
        String input = new String(System.in.readAllBytes(), StandardCharsets.UTF_8);
        Process p = new ProcessBuilder("sh", "-c", ESCAPE, "escape", field(input, "sleep", "300"))
                .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .redirectError(ProcessBuilder.Redirect.DISCARD)
                .start();
        if (p.waitFor() != 0) System.exit(1);
        System.out.println("{\"log\": \"daemons running\"}");
        System.out.flush();
        Thread.sleep((long) (Double.parseDouble(field(input, "holdS", "0")) * 1000));
        System.out.println("{\"result\": {\"daemons\": 2}}");
    }
}
