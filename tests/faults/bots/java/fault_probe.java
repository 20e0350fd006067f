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

    static String ppidOf(String pid) throws Exception {
        String stat = Files.readString(Paths.get("/proc/" + pid + "/stat"));
        return stat.substring(stat.lastIndexOf(')') + 2).split(" ")[1];
    }

    /** The serve replica that started this bot: the first ancestor that is not botsys-launch.
     * Pids are the machine's (/proc/self), not the PID namespace's (getpid() is 2 there). */
    static long serverPid() throws Exception {
        String pid = ppidOf("self");
        while (Files.readString(Paths.get("/proc/" + pid + "/comm")).startsWith("botsys-launch"))
            pid = ppidOf(pid);
        return Long.parseLong(pid);
    }

    public static void main(String[] args) throws Exception {
        long start = System.nanoTime();
        String env = new String(System.in.readAllBytes(), StandardCharsets.UTF_8);
        String log = field(env, "log");
        String sleep = field(env, "sleepMs");
        long pid = Long.parseLong(Files.readSymbolicLink(Paths.get("/proc/self")).toString());
        long ppid = serverPid();
        String head = "java " + field(env, "jobId") + " " + field(env, "attempt");
        append(log, "S " + head + " " + start + " " + pid + " " + ppid);
        Thread.sleep(sleep == null ? 0 : Long.parseLong(sleep.trim()));
        append(log, "E " + head + " " + start + " " + System.nanoTime() + " " + pid + " " + ppid);
        System.out.println("{\"result\": {\"pid\": " + pid + "}}");
    }
}
