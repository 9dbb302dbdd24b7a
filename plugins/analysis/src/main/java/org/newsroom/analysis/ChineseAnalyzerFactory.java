package org.newsroom.analysis;

import org.apache.lucene.analysis.Analyzer;
import org.elasticsearch.plugin.NamedComponent;
import org.elasticsearch.plugin.analysis.AnalyzerFactory;
import org.newsroom.analysis.lucene.NewsAnalyzers;

/** Chinese: Lucene SmartChineseAnalyzer word segmentation (bundled lucene-analysis-smartcn). */
@NamedComponent("newsroom_chinese")
public class ChineseAnalyzerFactory implements AnalyzerFactory {
    @Override
    public Analyzer create() {
        return NewsAnalyzers.chinese();
    }
}
