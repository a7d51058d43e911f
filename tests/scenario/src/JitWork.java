// JitWork.java - a JVM workout for scenario java_jit: the JIT's code cache (rwx mappings),
// HotSpot's own SIGSEGV use (implicit null checks, stack banging and its guard pages),
// threads, GC, and with an argument N a live set of N MiB touched in random order.
import java.util.*;
import java.util.concurrent.*;

public class JitWork {
  static int depth = 0;
  static void recurse() { depth++; recurse(); }

  static long churn() {
    HashMap<String, Integer> m = new HashMap<>();
    for (int i = 0; i < 400000; i++) m.merge("k" + (i % 50000), i, Integer::sum);
    long s = 0;
    for (Map.Entry<String, Integer> e : m.entrySet()) s += e.getKey().hashCode() ^ e.getValue();
    return s + m.size();
  }

  public static void main(String[] args) throws Exception {
    System.out.println("churn " + churn());
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < 100000; i++) sb.append(i % 10);
    System.out.println("string " + sb.length() + " " + sb.toString().hashCode());
    int nulls = 0;
    for (int i = 0; i < 20000; i++) {
      Object o = (i % 3 == 0) ? null : "x";
      try { nulls += o.hashCode() == 0 ? 0 : 0; } catch (NullPointerException e) { nulls++; }
    }
    System.out.println("null checks caught " + nulls);
    try { recurse(); } catch (StackOverflowError e) { System.out.println("stack overflow caught " + (depth > 1000)); }
    int[] a = new int[10];
    int oob = 0;
    for (int i = 0; i < 1000; i++) { try { a[i % 20] = i; } catch (ArrayIndexOutOfBoundsException e) { oob++; } }
    System.out.println("bounds caught " + oob);
    ExecutorService ex = Executors.newFixedThreadPool(4);
    List<Future<Long>> fs = new ArrayList<>();
    for (int t = 0; t < 8; t++) {
      final int seed = t;
      fs.add(ex.submit(() -> { long s = 0; Random r = new Random(seed); for (int i = 0; i < 2000000; i++) s += r.nextInt(1000); return s; }));
    }
    long tot = 0;
    for (Future<Long> f : fs) tot += f.get();
    ex.shutdown();
    System.out.println("threads " + tot);
    int mib = args.length > 0 ? Integer.parseInt(args[0]) : 64;
    byte[][] live = new byte[mib][];
    for (int i = 0; i < mib; i++) { live[i] = new byte[1 << 20]; for (int j = 0; j < live[i].length; j += 4096) live[i][j] = (byte) (i * 31 + j); }
    System.gc();
    Random r = new Random(42);
    long sum = 0;
    for (int k = 0; k < mib * 256; k++) { int i = r.nextInt(mib), j = r.nextInt(256) * 4096; sum += live[i][j]; live[i][j]++; }
    for (int i = 0; i < mib; i++) for (int j = 0; j < live[i].length; j += 4096) sum += live[i][j];
    System.out.println("live " + mib + " MiB sum " + sum);
  }
}
