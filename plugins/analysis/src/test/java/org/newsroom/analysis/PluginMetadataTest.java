package org.newsroom.analysis;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.Reader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.elasticsearch.plugin.NamedComponent;
import org.junit.jupiter.api.Test;

/** Checks the generated plugin metadata against the compiled classes. */
class PluginMetadataTest {
    private final Path metaDir = Path.of(System.getProperty("plugin.meta.dir", "target/plugin-metadata"));

    @Test
    void namedComponentsListsEveryComponent() throws Exception {
        String json = Files.readString(metaDir.resolve("named_components.json"));
        Path classes = Path.of(System.getProperty("plugin.classes.dir", "target/classes"));
        List<Class<?>> annotated;
        try (Stream<Path> files = Files.walk(classes)) {
            annotated = files.filter(p -> p.toString().endsWith("Factory.class"))
                .map(p -> classes.relativize(p).toString().replace(".class", "").replace('/', '.'))
                .map(PluginMetadataTest::load)
                .filter(c -> c.isAnnotationPresent(NamedComponent.class))
                .toList();
        }
        assertEquals(6, annotated.size(), annotated.toString());
        Matcher entry = Pattern.compile("\"(newsroom_[a-z_]+)\": \"([\\w.]+)\"").matcher(json);
        Set<String> inJson = entry.results().map(m -> m.group(1) + "=" + m.group(2)).collect(Collectors.toSet());
        Set<String> expected = annotated.stream()
            .map(c -> c.getAnnotation(NamedComponent.class).value() + "=" + c.getName())
            .collect(Collectors.toSet());
        assertEquals(expected, inJson);
        assertTrue(json.contains("\"org.elasticsearch.plugin.analysis.AnalyzerFactory\""));
        assertTrue(json.contains("\"org.elasticsearch.plugin.analysis.TokenFilterFactory\""));
        assertTrue(json.contains("\"org.elasticsearch.plugin.analysis.TokenizerFactory\""));
    }

    @Test
    void descriptorHasTheStableKeysOnly() throws IOException {
        Properties props = new Properties();
        try (Reader r = Files.newBufferedReader(metaDir.resolve("stable-plugin-descriptor.properties"))) {
            props.load(r);
        }
        assertEquals(Set.of("name", "description", "version", "elasticsearch.version", "java.version"), props.stringPropertyNames());
        assertEquals(props.getProperty("version"), props.getProperty("elasticsearch.version"));
        for (String key : props.stringPropertyNames()) {
            assertNotNull(props.getProperty(key));
            assertTrue(props.getProperty(key).contains("${") == false, key);
        }
    }

    private static Class<?> load(String name) {
        try {
            return Class.forName(name);
        } catch (ClassNotFoundException e) {
            throw new AssertionError(e);
        }
    }
}
