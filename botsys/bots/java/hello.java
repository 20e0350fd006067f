// hello: the smallest useful bot — reads the envelope, returns a greeting (used by benchmarks).
//
// Payload: anything (ignored).
// Result: {"hello": "java", "envelopeBytes": ...}
//
// The public class is named after the file: bots/java/hello.java holds `public class hello`.
public class hello {
    public static void main(String[] args) throws Exception {
        int bytes = System.in.readAllBytes().length;
        System.out.println("{\"result\": {\"hello\": \"java\", \"envelopeBytes\": " + bytes + "}}");
    }
}
