package org.newsroom.analysis;

import org.apache.lucene.analysis.Analyzer;
import org.elasticsearch.plugin.NamedComponent;
import org.elasticsearch.plugin.analysis.AnalyzerFactory;
import org.newsroom.analysis.lucene.NewsAnalyzers;

/** Russian: standard tokenizer, lowercase, ё folded to е, Russian stopwords, Snowball Russian stemming. */
@NamedComponent("newsroom_russian")
public class RussianAnalyzerFactory implements AnalyzerFactory {
    @Override
    public Analyzer create() {
        return NewsAnalyzers.russian();
    }
}
