/*
 * Build step (run by exec-maven-plugin with Java's source-file launcher, not part of the plugin):
 * writes named_components.json for an Elasticsearch stable plugin.
 *
 * Elasticsearch reads that file from the plugin's folder. It is a JSON object whose keys are the
 * @Extensible API types (e.g. org.elasticsearch.plugin.analysis.AnalyzerFactory) and whose values map
 * each component name (the @NamedComponent value) to its implementing class.
 *
 * Usage: java -cp <compile classpath incl. classes dir> GenerateNamedComponents.java <classesDir> <outputFile>
 */
import java.io.IOException;
import java.lang.reflect.Modifier;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.elasticsearch.plugin.Extensible;
import org.elasticsearch.plugin.NamedComponent;

public class GenerateNamedComponents {

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            throw new IllegalArgumentException("usage: GenerateNamedComponents <classesDir> <outputFile>");
        }
        Path classesDir = Path.of(args[0]);
        Path output = Path.of(args[1]);
        Map<String, Map<String, String>> components = scan(classesDir);
        if (components.isEmpty()) {
            throw new IllegalStateException("no @NamedComponent classes found under " + classesDir);
        }
        Files.createDirectories(output.toAbsolutePath().getParent());
        Files.writeString(output, toJson(components), StandardCharsets.UTF_8);
        System.out.println("[named-components] wrote " + output + ": " + components);
    }

    static Map<String, Map<String, String>> scan(Path classesDir) throws IOException, ClassNotFoundException {
        ClassLoader loader = GenerateNamedComponents.class.getClassLoader();
        Map<String, Map<String, String>> result = new TreeMap<>();
        List<String> classNames;
        try (Stream<Path> files = Files.walk(classesDir)) {
            classNames = files.filter(p -> p.toString().endsWith(".class"))
                .map(p -> classesDir.relativize(p).toString())
                .filter(p -> p.equals("module-info.class") == false && p.endsWith("package-info.class") == false)
                .map(p -> p.substring(0, p.length() - ".class".length()).replace('/', '.').replace('\\', '.'))
                .sorted()
                .toList();
        }
        for (String className : classNames) {
            Class<?> type = Class.forName(className, false, loader);
            NamedComponent named = type.getAnnotation(NamedComponent.class);
            if (named == null) {
                continue;
            }
            if (type.isInterface() || Modifier.isAbstract(type.getModifiers()) || Modifier.isPublic(type.getModifiers()) == false) {
                throw new IllegalStateException(className + ": a @NamedComponent must be a public concrete class");
            }
            if (type.getConstructors().length != 1) {
                throw new IllegalStateException(className + ": Elasticsearch requires exactly one public constructor");
            }
            Set<Class<?>> extensibles = extensiblesOf(type);
            if (extensibles.isEmpty()) {
                throw new IllegalStateException(className + ": implements no @Extensible plugin API type");
            }
            for (Class<?> extensible : extensibles) {
                String previous = result.computeIfAbsent(extensible.getName(), k -> new TreeMap<>()).put(named.value(), className);
                if (previous != null) {
                    throw new IllegalStateException("component name [" + named.value() + "] used by both " + previous + " and " + className);
                }
            }
        }
        return result;
    }

    /** All supertypes (classes and interfaces, transitively) marked @Extensible. */
    static Set<Class<?>> extensiblesOf(Class<?> type) {
        Set<Class<?>> found = new LinkedHashSet<>();
        Set<Class<?>> seen = new LinkedHashSet<>();
        Deque<Class<?>> todo = new ArrayDeque<>();
        todo.add(type);
        while (todo.isEmpty() == false) {
            Class<?> current = todo.poll();
            if (seen.add(current) == false) {
                continue;
            }
            if (current.isAnnotationPresent(Extensible.class)) {
                found.add(current);
            }
            if (current.getSuperclass() != null) {
                todo.add(current.getSuperclass());
            }
            todo.addAll(List.of(current.getInterfaces()));
        }
        return found;
    }

    static String toJson(Map<String, Map<String, String>> components) {
        StringBuilder json = new StringBuilder("{\n");
        int i = 0;
        for (var extensible : components.entrySet()) {
            json.append("  ").append(quote(extensible.getKey())).append(": {\n");
            int j = 0;
            for (var component : extensible.getValue().entrySet()) {
                json.append("    ").append(quote(component.getKey())).append(": ").append(quote(component.getValue()));
                json.append(++j < extensible.getValue().size() ? ",\n" : "\n");
            }
            json.append("  }").append(++i < components.size() ? ",\n" : "\n");
        }
        return json.append("}\n").toString();
    }

    static String quote(String s) {
        StringBuilder out = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                default -> {
                    if (c < 0x20) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        return out.append('"').toString();
    }
}
