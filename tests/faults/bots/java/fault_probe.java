// Fault-suite probe (see ../python/fault_probe.py for the log format).
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

public class fault_probe {
    static String field(String json, String name) {
        Matcher m = Pattern.compile("\"" + name + "\"\\s*:\\s*\"?([^\",}]*)").matcher(json);
        return m.find() ? m.group(1) : null;
    }

    static void append(String path, String line) throws Exception {
        Files.write(Paths.get(path), (line + "\n").getBytes(StandardCharsets.UTF_8),
            StandardOpenOption.CREATE, StandardOpenOption.APPEND, StandardOpenOption.WRITE);
    }

    /** The serve replica that started this bot: the parent, or botsys-launch's parent. */
    static long serverPid() {
        ProcessHandle parent = ProcessHandle.current().parent().orElse(null);
        if (parent == null) return 0L;
        boolean launcher = parent.info().command()
            .map(c -> Paths.get(c).getFileName().toString().startsWith("botsys-launch"))
            .orElse(false);
        return launcher ? parent.parent().map(ProcessHandle::pid).orElse(0L) : parent.pid();
    }

    public static void main(String[] args) throws Exception {
        long start = System.nanoTime();
        String env = new String(System.in.readAllBytes(), StandardCharsets.UTF_8);
        String log = field(env, "log");
        String sleep = field(env, "sleepMs");
        long pid = ProcessHandle.current().pid();
        long ppid = serverPid();
        String head = "java " + field(env, "jobId") + " " + field(env, "attempt");
        append(log, "S " + head + " " + start + " " + pid + " " + ppid);
        Thread.sleep(sleep == null ? 0 : Long.parseLong(sleep.trim()));
        append(log, "E " + head + " " + start + " " + System.nanoTime() + " " + pid + " " + ppid);
        System.out.println("{\"result\": {\"pid\": " + pid + "}}");
    }
}
