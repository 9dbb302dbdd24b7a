package org.newsroom.analysis;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.Tokenizer;
import org.apache.lucene.analysis.core.WhitespaceTokenizer;
import org.apache.lucene.analysis.tokenattributes.CharTermAttribute;
import org.junit.jupiter.api.Test;

class AnalyzersTest {

    static List<String> tokens(Analyzer analyzer, String text) throws IOException {
        List<String> out = new ArrayList<>();
        try (TokenStream ts = analyzer.tokenStream("f", text)) {
            CharTermAttribute term = ts.addAttribute(CharTermAttribute.class);
            ts.reset();
            while (ts.incrementToken()) {
                out.add(term.toString());
            }
            ts.end();
        }
        return out;
    }

    static String one(Analyzer analyzer, String word) throws IOException {
        List<String> t = tokens(analyzer, word);
        assertEquals(1, t.size(), () -> word + " -> " + t);
        return t.get(0);
    }

    @Test
    void english() throws IOException {
        Analyzer en = new EnglishAnalyzerFactory().create();
        assertEquals(one(en, "pipeline"), one(en, "pipelines"));
        assertEquals(one(en, "meeting"), one(en, "meetings"));
        assertEquals(one(en, "summit"), one(en, "Summits"));
        assertEquals(one(en, "negotiated"), one(en, "negotiation"));
        assertEquals(one(en, "negotiation"), one(en, "negotiations"));
        assertEquals(List.of("putin", "summit"), tokens(en, "Putin's summit"));
        assertEquals(List.of("talk"), tokens(en, "the talks"));
        assertEquals("news", one(en, "News"));
        // Han characters come out as bigrams, so 普京 never matches the 京 of 北京
        assertEquals(List.of("普京"), tokens(en, "普京"));
        assertEquals(List.of("在北", "北京"), tokens(en, "在北京"));
    }

    @Test
    void russian() throws IOException {
        Analyzer ru = new RussianAnalyzerFactory().create();
        String putin = one(ru, "Путин");
        for (String form : List.of("Путина", "Путину", "Путиным", "ПУТИНЕ")) {
            assertEquals(putin, one(ru, form), form);
        }
        assertEquals(one(ru, "переговоры"), one(ru, "переговорах"));
        assertEquals(one(ru, "президент"), one(ru, "президентом"));
        assertEquals(one(ru, "ёлка"), one(ru, "елка"));
        assertEquals(List.of(), tokens(ru, "и в на"));
        assertEquals(List.of("путин", "普京"), tokens(ru, "Путин 普京"));
    }

    @Test
    void chinese() throws IOException {
        Analyzer zh = new ChineseAnalyzerFactory().create();
        List<String> putin = tokens(zh, "普京");
        List<String> beijing = tokens(zh, "北京");
        assertTrue(putin.stream().noneMatch(beijing::contains), putin + " vs " + beijing);
        assertEquals(List.of("普京"), putin);
        List<String> xi = tokens(zh, "习近平");
        assertFalse(xi.contains("习") || xi.contains("平"), xi.toString());
        assertEquals(List.of("习近", "近平"), xi);
        assertEquals(List.of("俄罗斯", "天然气", "出口"), tokens(zh, "俄罗斯天然气出口"));
        assertEquals(List.of("俄罗斯", "总统", "普京", "京与", "中国", "国家", "主席", "习近", "近平", "平在", "北京", "会晤"),
            tokens(zh, "俄罗斯总统普京与中国国家主席习近平在北京会晤。"));
        // punctuation breaks a run: no bigram across it
        assertEquals(List.of("普", "京"), tokens(zh, "普，京"));
        assertEquals(List.of("ga", "pipelin"), tokens(zh, "Gas Pipelines"));
        // Cyrillic, which the segmenter cuts into letters, is left out rather than matched by letter
        assertEquals(List.of("普京"), tokens(zh, "Путина 普京"));
    }

    @Test
    void tokenFilters() throws IOException {
        Tokenizer source = new WhitespaceTokenizer();
        source.setReader(new java.io.StringReader("путиным ещё"));
        List<String> out = new ArrayList<>();
        try (TokenStream ts = new RussianStemTokenFilterFactory().create(source)) {
            CharTermAttribute term = ts.addAttribute(CharTermAttribute.class);
            ts.reset();
            while (ts.incrementToken()) {
                out.add(term.toString());
            }
            ts.end();
        }
        assertEquals(List.of("путин", "ещ"), out);
    }
}
