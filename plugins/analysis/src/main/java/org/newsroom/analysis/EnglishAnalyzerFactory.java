package org.newsroom.analysis;

import org.apache.lucene.analysis.Analyzer;
import org.elasticsearch.plugin.NamedComponent;
import org.elasticsearch.plugin.analysis.AnalyzerFactory;
import org.newsroom.analysis.lucene.NewsAnalyzers;

/** English: standard tokenizer, possessives removed, lowercase, English stopwords, Porter stemming. */
@NamedComponent("newsroom_english")
public class EnglishAnalyzerFactory implements AnalyzerFactory {
    @Override
    public Analyzer create() {
        return NewsAnalyzers.english();
    }
}
