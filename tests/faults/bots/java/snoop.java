// Containment probe (see ../python/snoop.py): looks for the server's secrets, returns what it read.
import java.io.File;
import java.io.FileInputStream;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

public class snoop {
    static final int CAP = 4096;

    static String ppidOf(String pid) throws Exception {
        String stat = Files.readString(Paths.get("/proc/" + pid + "/stat"));
        return stat.substring(stat.lastIndexOf(')') + 2).split(" ")[1];
    }

    static String serverPid() throws Exception {
        String pid = ppidOf("self");
        while (Files.readString(Paths.get("/proc/" + pid + "/comm")).startsWith("botsys-launch"))
            pid = ppidOf(pid);
        return pid;
    }

    static void grab(String path, Map<String, String> found, List<String> denied) {
        try (InputStream in = new FileInputStream(path)) {
            found.put(path, new String(in.readNBytes(CAP), StandardCharsets.UTF_8));
        } catch (Exception e) {
            denied.add(path + ": " + e.getMessage());
        }
    }

    static String quote(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') b.append('\\').append(c);
            else if (c < 0x20 || c > 0x7e) b.append(String.format("\\u%04x", (int) c));
            else b.append(c);
        }
        return b.append('"').toString();
    }

    public static void main(String[] args) throws Exception {
        String input = new String(System.in.readAllBytes(), StandardCharsets.UTF_8);
        Matcher m = Pattern.compile("\"config\"\\s*:\\s*\"([^\"]+)\"").matcher(input);
        String config = m.find() ? m.group(1) : "/nonexistent";
        String server = serverPid();
        Map<String, String> found = new LinkedHashMap<>();
        List<String> denied = new ArrayList<>();
        for (String name : new String[] {"environ", "mem", "cmdline"})
            grab("/proc/" + server + "/" + name, found, denied);
        String[] fds = new File("/proc/" + server + "/fd").list();
        if (fds == null) denied.add("/proc/" + server + "/fd: not listable");
        else for (String fd : fds) grab("/proc/" + server + "/fd/" + fd, found, denied);
        grab(config, found, denied);
        for (String pid : new File("/proc").list()) {
            if (!pid.matches("\\d+")) continue;
            for (String name : new String[] {"environ", "cmdline"})
                grab("/proc/" + pid + "/" + name, found, denied);
        }
        StringBuilder out = new StringBuilder("{\"result\": {\"server\": " + server + ", \"found\": {");
        String sep = "";
        for (Map.Entry<String, String> e : found.entrySet()) {
            out.append(sep).append(quote(e.getKey())).append(": ").append(quote(e.getValue()));
            sep = ", ";
        }
        out.append("}, \"denied\": [");
        sep = "";
        for (String d : denied) {
            out.append(sep).append(quote(d));
            sep = ", ";
        }
        System.out.println(out.append("]}}"));
    }
}
